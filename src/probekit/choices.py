"""Allowed values that recipes and the code using them share, defined once (no heavy imports:
``probekit options recipe`` reads them without loading torch)."""

POOLS = ("mean", "first", "last", "none")            # record.pool: per example, or every token
BACKENDS = ("hdf5", "safetensors")                   # record.backend: the store's file format
DTYPES = ("float32", "float16", "bfloat16")          # record.dtype, model.dtype
ALIGNMENTS = ("same_index", "relative")              # analysis.depth_alignment
CONTRAST_KINDS = ("difference", "trend", "gap", "spread", "did")  # analysis.contrasts[].kind
