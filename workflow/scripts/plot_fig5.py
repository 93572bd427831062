import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
import json  # noqa: E402
from pathlib import Path  # noqa: E402

from ngbench.figures import fig5  # noqa: E402

records = [json.loads(Path(p).read_text()) for p in snakemake.input.records]
fig5.plot(records, snakemake.output.png, snakemake.output.csv)
