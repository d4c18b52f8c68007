# Corpus case: package marker (facebookresearch/denoiser).
