"""Rule scorecard: unpack, call the library, write."""

from starclusters.logs import setup_logging
from starclusters.scorecard.stage import make_scorecard

setup_logging(snakemake.log[0])
out = snakemake.output
make_scorecard(
    list(snakemake.input),
    out.table,
    out.summary,
    {
        "recall_visibility": out.recall_visibility,
        "parameters": out.parameters,
        "age_mass": out.age_mass,
        "summary": out.summary_figure,
    },
)
