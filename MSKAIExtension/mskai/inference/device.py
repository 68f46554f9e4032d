"""Which torch device inference runs on."""

from __future__ import annotations

from mskai.errors import InputError


def choose_device(preference: str | None = "auto"):
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    import torch

    choice = (preference or "auto").strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(choice)
    except RuntimeError as exc:
        raise InputError(f"device {preference!r} is not known; use auto, cpu or cuda.") \
            from exc
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise InputError(f"device {preference!r} is not supported; use auto, cpu or cuda.")
    if not torch.cuda.is_available():
        raise InputError(f"device {preference!r} was requested but PyTorch sees no CUDA GPU "
                         "on this machine; use --device cpu (or auto).")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"device {preference!r} does not exist: this machine has "
                         f"{torch.cuda.device_count()} CUDA GPU(s); use cuda:0 or auto.")
    return device
