import _pkg  # noqa: F401
from ngbench.bridge import start

start(snakemake)
from ngbench import figures, table  # noqa: E402

ops = {}  # model@bs -> its PyTorch eager op table (the rule's inputs are eager runs only)
for path in sorted(map(str, snakemake.input)):
    df = table.read(path)
    if len(df):
        ops.setdefault(f"{df['model'].iloc[0]}@bs{int(df['batch_size'].iloc[0])}", df)
paper, every = figures.table1(ops)
figures.write_table(
    paper, snakemake.output.csv, snakemake.output.md, "Table I: non-GEMM operators", figures.TABLE1_NOTES
)
every.to_csv(snakemake.output.ops, index=False)
