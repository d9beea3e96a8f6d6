"""The fidelity table (beside each quant's speed) and its figure."""

from enginebench.report.fidelity import fidelity_frame, plot_fidelity, write_fidelity
from enginebench.scriptio import logged

inp, out, p = snakemake.input, snakemake.output, snakemake.params
with logged(snakemake.log[0]):
    frame = fidelity_frame(list(inp.scores), inp.results, p.decode_sweeps, list(inp.kld))
    write_fidelity(frame, out.csv, out.md, out.html)
    plot_fidelity(frame, out.png, out.svg)
