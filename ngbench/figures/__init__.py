"""The paper's figures and tables: one module per figure or table, each drawing only the runs its spec
(:mod:`.specs`) lists; :mod:`.style` draws in the taxonomy's palette (``taxonomy.yaml``) and holds the
panel-grid helpers; :mod:`.paper` the paper's reported values (``paper.yaml``).

Every figure writes its data as CSV beside the PNG. Panels whose data cannot exist on this platform (no GPU)
or whose runs failed are drawn and marked with the reason, never silently dropped.
"""
