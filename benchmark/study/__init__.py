"""The study (docs/DESIGN.md §8): one config → a graph of content-hashed stages → results.json.

    config    profile, datasets and seed, validated before any work starts
    cost      projected seconds per stage (ETAs, the paper profile's projection)
    stages    the stage functions (data, recognizers, GANs, generation, scoring)
    plan      the stage graph a config expands into
    assemble  results.json from the recorded stage results
    run       running a study (or merging shards) into its directory
"""
from reports.results import load_results

from .assemble import aggregate_seeds, assemble_results
from .config import DatasetSpec, StudyConfig, config_from_json, load_study_config, read_config_file
from .cost import cost_model, detect_device
from .plan import CODE_VERSION, ablation_grid, plan_study, select_targets, unit_name
from .run import merge_studies, run_study, versions

__all__ = ["CODE_VERSION", "DatasetSpec", "StudyConfig", "ablation_grid", "aggregate_seeds", "assemble_results",
           "config_from_json", "cost_model", "detect_device", "load_results", "load_study_config", "merge_studies",
           "plan_study", "read_config_file", "run_study", "select_targets", "unit_name", "versions"]
