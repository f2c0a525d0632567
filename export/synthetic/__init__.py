"""Seeded generators of data nobody has to ship: catalogues at scale (`catalogs`: product-family descriptors and
titles from a grammar, for the 500K benchmarks), lipstick-like shade catalogues whose products differ only by
their printed text (`shades`), and product-like images with exact text boxes to train EAST (`text_images`).

The generated non-product photos that calibrate the "no matching product" threshold stay in
`runtime.confidence.nonproducts`: `shadematch eval` (a runtime command) scores on them too, and the runtime never
imports `export`.
"""
