from .datasets import PairFolderDataset, SyntheticPairDataset, build_dataset, build_task_datasets  # noqa: F401  (T1: training datasets)
from .multitask import MultiTaskBatches  # noqa: F401  (T1: multi-task batching)
