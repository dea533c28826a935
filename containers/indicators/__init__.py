"""Built-in streaming indicator kernels; importing this package registers them."""

from . import basic, hmm, ranges, svm  # noqa: F401  (registration side effects)
