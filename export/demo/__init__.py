"""`shadematch demo`: the small real catalogue shipped in this folder (Grocery Store dataset, MIT; made by
benchmarks/grocery/make_demo.py) and the code that builds it into a bundle and queries it (`run`). The tests and
benchmarks use the same files as their small real data.
"""
