"""Upper bounds on the numbers a user can set, so that a typo fails at once instead of running forever.

Each bound lies far beyond any sensible run (the largest published RBMs have a few thousand hidden
units; CD is run with T up to about 25) and far below where the number would overflow a C integer
or exhaust memory silently. Configs (:mod:`recsys_rbm.train.config`, :mod:`recsys_rbm.recommender.config`)
and the command-line options check them.
"""

MAX_HIDDEN = 100_000  # hidden units
MAX_EPOCHS = 100_000  # passes over the data (also the CD schedule's epochs and the patience)
MAX_CD_STEPS = 1_000  # Gibbs steps T of CD-T / PCD-T
MAX_BATCH_SIZE = 10_000_000  # cases per mini-batch
MAX_SEED = 2**63 - 1  # seeds are 64-bit: torch.Generator.manual_seed takes at most this
MAX_RAW_ID = 2**63 - 1  # raw user and movie ids are int64
MAX_TOP = 100_000  # length of a recommendation or similarity list
MAX_RANK_K = 10_000  # k of the ranking metrics
MAX_RANDOM_FOLDS = 100  # random splits in one evaluation
