"""The data of a run as MLflow dataset inputs (the UI's Datasets column), in one request."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from mlflow import MlflowClient
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.data.sources import LocalArtifactDatasetSource
from mlflow.entities import DatasetInput, InputTag
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT


class Split(Protocol):
    """What mlbench.data.SplitRecord holds (tracking does not import the data package)."""

    name: str
    source: str
    digest: str
    samples: int
    context: str


class _SplitDataset(MetaDataset):
    """A dataset known by name, source and content digest, with its sample count."""

    def __init__(self, split: Split) -> None:
        source: Any = (LocalArtifactDatasetSource(split.source) if split.source.startswith("/")
                       else CodeDatasetSource({"loader": split.source}))
        super().__init__(source, name=split.name, digest=split.digest)
        self._samples = split.samples

    @property
    def profile(self) -> dict[str, int]:
        """The number of samples (shown in the UI's dataset panel)."""
        return {"num_samples": self._samples}

    def to_dict(self) -> dict[str, str]:
        """MetaDataset's fields plus the profile (MetaDataset leaves it out)."""
        return {**super().to_dict(), "profile": json.dumps(self.profile)}


def log_datasets(client: MlflowClient, run_id: str, splits: Iterable[Split]) -> None:
    """Log each split as a dataset input with its context (train, val, test)."""
    inputs = [
        DatasetInput(_SplitDataset(s)._to_mlflow_entity(),
                     tags=[InputTag(MLFLOW_DATASET_CONTEXT, s.context)])
        for s in splits
    ]
    client.log_inputs(run_id, datasets=inputs)
