"""Rows of a registry entry from wherever LLaMA-Factory would load them: a local file, the Hugging Face hub,
ModelScope, Modelers (openmind), a dataset folder or hub id in script_url, or a cloud file (s3://, gs://).

Hub loads call the same functions with the same arguments as LLaMA-Factory 0.9.5's loader (data/loader.py); an
unreachable hub becomes a DataError that names the dataset and the URL and says how to work offline.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.data.errors import DataError
from tunelab.data.read import FILE_TYPES, Row, extension, iter_rows
from tunelab.data.registry import REGISTRY_FILE, Dataset
from tunelab.runtime import env

if TYPE_CHECKING:  # imported where used: the CLI starts without loading datasets or fsspec
    from datasets import Dataset as HFDataset
    from datasets import IterableDataset
    from fsspec import AbstractFileSystem

OFFLINE_ERRORS = {"OfflineModeIsEnabled", "LocalEntryNotFoundError", "ConnectError", "ConnectTimeout", "ReadTimeout",
                  "Timeout", "NameResolutionError", "MaxRetryError", "ProxyError", "NoCredentialsError"}


def dataset_rows(dataset: Dataset, *, streaming: bool = False, cache_dir: str | None = None,
                 hf_token: str | None = None, ms_token: str | None = None,
                 om_token: str | None = None) -> list[Row] | Iterator[Row]:
    """The rows of one entry: a list, or a lazy iterator when streaming; `subset` names the sheet of an xlsx file."""
    if dataset.source == "file":
        assert dataset.path is not None  # lookup resolved it
        rows = iter_rows(dataset.path, dataset.name, sheet=dataset.entry.subset, lazy=streaming, bad_rows=True)
        return rows if streaming else list(rows)
    if dataset.source == "cloud_file":
        rows = cloud_rows(dataset)
        return rows if streaming else list(rows)
    loaded = load_remote(dataset, streaming, cache_dir, {"hf": hf_token, "ms": ms_token, "om": om_token})
    rows = remote_rows(dataset, loaded)
    return rows if streaming else list(rows)


def source_url(dataset: Dataset) -> str:
    """A URL (or path) the user can open to see where the entry points."""
    target = dataset.target
    if dataset.source == "hf_hub":
        from huggingface_hub import constants

        return f"{constants.ENDPOINT}/datasets/{target}"
    if dataset.source == "ms_hub":
        return f"https://modelscope.cn/datasets/{target}"
    if dataset.source == "om_hub":
        return f"https://modelers.cn/datasets/{target}"
    if dataset.source == "script":
        return str(script_path(dataset))
    return target


def script_path(dataset: Dataset) -> str:
    """script_url joined to dataset_dir as LLaMA-Factory does; a hub id when no such local folder exists."""
    local = (dataset.dataset_dir or Path(".")) / dataset.target
    return str(local) if local.exists() else dataset.target


def load_remote(dataset: Dataset, streaming: bool, cache_dir: str | None,
                tokens: dict[str, str | None]) -> HFDataset | IterableDataset:
    """A datasets.Dataset (or IterableDataset when streaming) from a hub or a script_url folder."""
    entry = dataset.entry
    with hub_errors(dataset):
        if dataset.source == "ms_hub":
            return load_modelscope(dataset, streaming, cache_dir, tokens["ms"])
        if dataset.source == "om_hub":
            return load_openmind(dataset, streaming, cache_dir, tokens["om"])
        from datasets import load_dataset

        path = dataset.target if dataset.source == "hf_hub" else script_path(dataset)
        return load_dataset(path=path, name=entry.subset, data_dir=entry.folder, split=entry.split,
                            cache_dir=cache_dir, token=tokens["hf"], streaming=streaming)


def load_modelscope(dataset: Dataset, streaming: bool, cache_dir: str | None,
                    token: str | None) -> HFDataset | IterableDataset:
    """MsDataset.load with LLaMA-Factory's arguments; a clear error when modelscope is not installed."""
    try:
        from modelscope import MsDataset  # type: ignore[import-not-found]
        from modelscope.utils.config_ds import MS_DATASETS_CACHE  # type: ignore[import-not-found]
    except ImportError:
        raise missing_package(dataset, "modelscope>=1.14.0", "ms_hub_url", "USE_MODELSCOPE_HUB") from None
    entry = dataset.entry
    loaded = MsDataset.load(dataset_name=dataset.target, subset_name=entry.subset, data_dir=entry.folder,
                            data_files=None, split=entry.split, cache_dir=cache_dir or MS_DATASETS_CACHE,
                            token=token, use_streaming=streaming)
    return loaded.to_hf_dataset() if isinstance(loaded, MsDataset) else loaded


def load_openmind(dataset: Dataset, streaming: bool, cache_dir: str | None,
                  token: str | None) -> HFDataset | IterableDataset:
    """OmDataset.load_dataset with LLaMA-Factory's arguments; a clear error when openmind is not installed."""
    try:
        from openmind import OmDataset  # type: ignore[import-not-found]
        from openmind.utils.hub import OM_DATASETS_CACHE  # type: ignore[import-not-found]
    except ImportError:
        raise missing_package(dataset, "openmind>=0.8.0", "om_hub_url", "USE_OPENMIND_HUB") from None
    entry = dataset.entry
    return OmDataset.load_dataset(path=dataset.target, name=entry.subset, data_dir=entry.folder, data_files=None,
                                  split=entry.split, cache_dir=cache_dir or OM_DATASETS_CACHE, token=token,
                                  streaming=streaming)


def missing_package(dataset: Dataset, requirement: str, key: str, flag: str | None = None) -> DataError:
    """The error for a source whose client library is not installed; when the entry has an hf_hub_url too, the hub
    was chosen by the FLAG environment variable, and unsetting it is the quickest fix."""
    name = requirement.split(">")[0]
    if flag and dataset.entry.hf_hub_url:
        other = f"unset {flag} to read its hf_hub_url {dataset.entry.hf_hub_url!r}"
    else:
        other = "give the entry an hf_hub_url"
    return DataError(f"{key} {dataset.target!r} needs the {name} package, which is not installed",
                     dataset=dataset.name, field=key,
                     fix=f"pip install '{requirement}', or {other}, or download the data and set file_name")


def remote_rows(dataset: Dataset, loaded: HFDataset | IterableDataset) -> Iterator[Row]:
    """Plain dict rows of a loaded (Iterable)Dataset; errors while streaming are reported like load errors."""
    from datasets import Dataset as HFDataset
    from datasets.features.features import require_decoding

    with hub_errors(dataset):
        features = getattr(loaded, "features", None) or {}
        if isinstance(loaded, HFDataset) and not any(require_decoding(f) for f in features.values()):
            yield from loaded.to_list()  # columnar conversion: much faster than row-by-row decoding
        else:
            yield from (dict(row) for row in loaded)  # images/audio decoded as LLaMA-Factory sees them


@contextmanager
def hub_errors(dataset: Dataset) -> Iterator[None]:
    """Turn a loader's exception into a DataError naming the dataset, the URL and the way out."""
    try:
        yield
    except DataError:
        raise
    except Exception as exc:  # the hub clients raise many unrelated types; each is classified below
        raise load_error(dataset, exc) from exc


def error_names(exc: BaseException) -> set[str]:
    """Class names of an exception, its bases and the exceptions chained to it."""
    names: set[str] = set()
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        names |= {cls.__name__ for cls in type(current).__mro__}
        current = current.__cause__ or current.__context__
    return names


def load_error(dataset: Dataset, exc: Exception) -> DataError:
    """The DataError for one failed load, chosen by what went wrong."""
    url, key = source_url(dataset), source_key(dataset)
    names, text = error_names(exc), f"{type(exc).__name__}: {exc}".strip()
    offline = env.hub_offline() or "OfflineModeIsEnabled" in names or "OfflineModeIsEnabled" in text
    if "ConnectionError" in names or names & OFFLINE_ERRORS:
        mode = ("HF_HUB_OFFLINE is set, so only datasets already in the cache load" if offline
                else "set HF_ENDPOINT to a reachable mirror, or HF_HUB_OFFLINE=1 to use the cache only")
        return DataError(f"cannot reach {url} ({text:.300})", dataset=dataset.name, field=key,
                         fix=f"download the data on a machine that is online, put the file next to {REGISTRY_FILE} and "
                             f"set file_name instead of {key}; {mode}", kind="hub unreachable")
    if "DatasetNotFoundError" in names or "RepositoryNotFoundError" in names:
        return DataError(f"{url} was not found ({text:.300})", dataset=dataset.name, field=key,
                         fix=f"check {key}; a private or gated dataset needs a token (hf_hub_token)")
    if "Dataset scripts are no longer supported" in text:
        return DataError(f"{url} holds a loading script, which the installed datasets library no longer runs",
                         dataset=dataset.name, field=key,
                         fix="use a folder or hub dataset with data files (parquet, json, csv), or run the script once "
                             "and register its output with file_name")
    if "Unknown split" in text or "split" in text.lower() and "should be one of" in text.lower():
        return DataError(f"{url} has no split {dataset.entry.split!r} ({text:.300})", dataset=dataset.name,
                         field="split", fix="set split to one of the splits the message lists")
    if "BuilderConfig" in text or "Config name is missing" in text:
        return DataError(f"{url}: the subset {dataset.entry.subset!r} does not fit ({text:.300})",
                         dataset=dataset.name, field="subset", fix="set subset to one of the configs the message lists")
    return DataError(f"could not load {url} ({text:.300})", dataset=dataset.name, field=key,
                     fix=f"check {key}, subset, folder and split, or download the data and set file_name")


def source_key(dataset: Dataset) -> str:
    """The dataset_info.json key the entry's data comes from."""
    return {"hf_hub": "hf_hub_url", "ms_hub": "ms_hub_url", "om_hub": "om_hub_url", "script": "script_url",
            "cloud_file": "cloud_file_name"}.get(dataset.source, "file_name")


def cloud_filesystem(dataset: Dataset) -> tuple[AbstractFileSystem, str]:
    """fsspec filesystem and path for cloud_file_name; s3 and gcs try anonymous access first, as LLaMA-Factory does."""
    try:
        import fsspec
    except ImportError:
        raise missing_package(dataset, "fsspec", "cloud_file_name") from None
    target = dataset.target
    protocol = target.split("://", 1)[0] if "://" in target else "file"
    helper = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}.get(protocol)
    try:
        if helper:
            try:
                fs, path = fsspec.core.url_to_fs(target, anon=True)
                if fs.exists(path):
                    return fs, path
            except ImportError:
                raise
            except Exception:  # private bucket: try again with the configured credentials
                pass
        fs, path = fsspec.core.url_to_fs(target)
    except ImportError:
        raise missing_package(dataset, helper or protocol, "cloud_file_name") from None
    return fs, path


def cloud_rows(dataset: Dataset) -> Iterator[Row]:
    """Rows of a cloud file, or of the same-type data files in a cloud folder, read by tunelab's readers."""
    with hub_errors(dataset):
        fs, path = cloud_filesystem(dataset)
        if not fs.exists(path):
            raise DataError(f"{dataset.target} does not exist", dataset=dataset.name, field="cloud_file_name",
                            fix="check the bucket and path, and your credentials")
        files = sorted(fs.ls(path, detail=False)) if fs.isdir(path) else [path]
        files = [f for f in files if extension(Path(f)) in FILE_TYPES]
        if not files:
            raise DataError(f"no data files ({', '.join(FILE_TYPES)}) in {dataset.target}", dataset=dataset.name,
                            field="cloud_file_name")
        folder = Path(tempfile.mkdtemp(prefix="tunelab-cloud-"))
        try:
            for file in files:
                fs.get(file, str(folder / Path(file).name))
            local = folder if fs.isdir(path) else folder / Path(files[0]).name
            yield from iter_rows(local, dataset.name, sheet=dataset.entry.subset)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
