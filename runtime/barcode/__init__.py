"""Barcodes on the photo: a GTIN the catalogue holds is the answer before any visual search."""
