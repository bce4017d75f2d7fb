"""On-demand visits (walk-in / urgent care): the clinic's queue, its public link, the walk-ins."""
