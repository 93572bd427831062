"""What the op tables say: group shares per run (:mod:`.shares`), GEMM / non-GEMM time classes
(:mod:`.classes`, the one place they are computed), fusion (:mod:`.fusion`) and quantization
(:mod:`.quantization`). Figures draw from these; nothing here plots.
"""
