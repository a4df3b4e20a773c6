"""htraug dataset layer: format, alphabets, word priors, preprocessing, builders and importers.

Note: this top-level package shares its import name with Hugging Face `datasets`; htraug is
installed into its own virtual environment, where only this one exists.
"""
