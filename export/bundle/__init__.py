"""Catalogue -> bundle, the offline stage's second job: read a catalogue (`catalog`), describe its images through
a runtime backend (`features`; in worker processes `shards`, on Ray `distributed`), learn the projection
(`projection`, `adapt`: regularised LDA on the catalogue's own store-like views), fit the match confidence
(`confidence`), map the titles (`textmap`, Algorithm 1 of Hou, Ji, Wang 2019) and the words read on the images
(`labels`), and write a bundle (`build`); `update` makes a new version from an old one and a delta, `tune`
chooses a bundle's search settings on labelled photos. `commands` holds their `shadematch` subcommands.

The bundle's format is the runtime's (`runtime.bundle`): this room writes what `runtime` reads, and imports it.
"""
