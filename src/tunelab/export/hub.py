"""export_hub_model_id: push a complete local export to the Hugging Face hub."""

from __future__ import annotations

from pathlib import Path

from tunelab.export.errors import ExportError


def push(folder: Path, repo_id: str) -> str:
    """Upload the folder to repo_id (created if needed); returns the repo's URL. A failure (offline, no token, no
    permission) is an ExportError that says the local export is complete."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        url = api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="tunelab export")
    except Exception as exc:  # offline mode, network, auth and permission errors all end the same way
        reason = str(exc).splitlines()[0][:300] if str(exc) else ""
        raise ExportError(f"the local export is complete at {folder}, but pushing it to the hub as {repo_id} "
                          f"failed ({type(exc).__name__}: {reason}); push it later with `hf upload {repo_id} "
                          f"{folder}`, or remove export_hub_model_id") from None
    return str(url)
