from .datasets import PairFolderDataset, SyntheticPairDataset, build_dataset  # noqa: F401  (T1: training datasets)
from .multitask import MultiTaskBatches  # noqa: F401  (T1: multi-task batching)
