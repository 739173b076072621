"""starclusters: find star clusters in multi-band galaxy images with a CNN trained on mocks.

Run `snakemake --cores all` (embedded default, config/config.yaml) or pick a preset
with `--configfile config/m83.yaml`. Stages live in workflow/rules/*.smk.
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# One galaxy per run; its name never spans folders, so that results/{galaxy}/... rules
# never match the validation galaxies' results/{galaxy}/validation/{name}/... files.
wildcard_constraints:
    galaxy="[^/]+",
    name="[^/]+",


# The first rule is the default target.
rule all:
    """Every product of the pipeline for the configured galaxy."""
    input:
        photometry_outputs(),
        mock_outputs(),
        mosaic_outputs(),
        model_outputs(),
        detect_outputs(),
        candidate_outputs(),
        analysis_outputs(),
        artificial_outputs(),
        validation_outputs(),
        scorecard_outputs(),
        robustness_outputs(),


include: "workflow/rules/photometry.smk"
include: "workflow/rules/mocks.smk"
include: "workflow/rules/mosaic.smk"
include: "workflow/rules/backgrounds.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/detect.smk"
include: "workflow/rules/artificial.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/validation.smk"
include: "workflow/rules/baseline.smk"
include: "workflow/rules/scorecard.smk"
include: "workflow/rules/robustness.smk"
