"""One spectrum: the record every reader returns, the readers, and the preprocessing to 140 points.

- `record`: `Spectrum` and `SpectrumMeta` (whose fields are the pool's metadata schema)
- `readers`: `read_spectrum` for LAMOST and Ondřejov CCD700 files, layouts found from headers
- `fits_header`: a file's FITS bytes (bounded gunzip) and its headers, checked against themselves
  and the file's size before any pixel is read
- `preprocess`: air → vacuum, resolution matching, resampling onto the window, normalisation
- `settings`: `PreprocessSettings`, the window and its sampling
- `fits_cards`: raw FITS header cards and 2880-byte blocks, for writers that skip astropy
"""
