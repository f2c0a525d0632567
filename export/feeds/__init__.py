"""Product feeds (Google Merchant Center TSV, CSV, RSS and Atom) in as catalogues: parse, fetch the images
through a revalidating cache, and turn each product image into a catalogue row."""
