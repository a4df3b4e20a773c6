"""htraug: htr — the gated convolutional recurrent recognizer (Bluche & Messina, ICDAR 2017).

model.py (GatedCRNN, ctc_loss), train.py (CTC training, early stopping, exact resume, DDP),
augment.py (classic distortions), decode.py (greedy CTC), evaluate.py (recognize, evaluate),
checkpoint.py (load_recognizer), cli.py (`htraug htr train|eval`, `htraug metrics text`).
"""
