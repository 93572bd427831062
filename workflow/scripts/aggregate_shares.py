import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import shares  # noqa: E402

shares_df, unknown_df = shares.aggregate(snakemake.input)
shares.write(shares_df, unknown_df, snakemake.output.shares, snakemake.output.unknown)
