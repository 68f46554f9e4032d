"""Models: the manifest (``mskai.models/1``), sha256 verification, safe loaders, registry.

Nothing here unpickles untrusted data: state dicts load with ``weights_only=True``,
TorchScript and ONNX need no pickle, and every file is checked against its sha256 first.
"""
