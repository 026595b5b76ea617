"""HardenImage inference server: FastAPI in front of a TorchScript language model.

Security properties (STRIDE):
- Spoofing / Tampering: the model is pinned by the digest of its OCI manifest, given by the Deployment
  (MODEL_MANIFEST_DIGEST) together with the manifest's exact bytes (MODEL_MANIFEST, base64). The server checks
  sha256(manifest) == the pinned digest, then every file in MODEL_DIR against the per-file SHA-256 the manifest's
  layers carry (no missing, unlisted, symlinked or special file), and hashes again the bytes it actually loads.
  Nothing beside the files is trusted: whoever can write the weights cannot also rewrite the pin. Any mismatch is
  one JSON log line `model_integrity_failed` and exit 3, before anything is served.
- Repudiation: the pinned model digest is logged at start and with every request, and returned with every answer
  (`model` field and the `X-Model-Digest` header): which model answered is on record.
- Denial of service: request bodies are capped (MAX_REQUEST_BYTES), prompts and generated tokens are capped,
  and each generation has a deadline (GENERATE_TIMEOUT_SECONDS).
- Information disclosure: logs are JSON lines with method, path, status and duration, never request or
  response bodies (prompts may carry patient data).
"""
import asyncio
import base64
import binascii
import hashlib
import io
import json
import os
import re
import stat
import sys
import time

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

MODEL_DIR = os.environ.get("MODEL_DIR", "/models")
# Layer annotations written by `harden model pack` (docs/model.md): one file per layer, its path in the model and the
# lower-case hex SHA-256 of its bytes (ModelPack's own file metadata has no hash).
PATH_ANNOTATION = "org.cncf.model.filepath"
SHA256_ANNOTATION = "dev.hardenimage.model.file.sha256"
MAX_MANIFEST_BYTES = 4 << 20
MAX_REQUEST_BYTES = int(os.environ.get("MAX_REQUEST_BYTES", "16384"))
MAX_PROMPT_CHARS = int(os.environ.get("MAX_PROMPT_CHARS", "4096"))
MAX_NEW_TOKENS = int(os.environ.get("MAX_NEW_TOKENS", "64"))
TIMEOUT = float(os.environ.get("GENERATE_TIMEOUT_SECONDS", "10"))
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def log(level, event, **fields):
    record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": level, "event": event}
    record.update(fields)
    print(json.dumps(record, sort_keys=True), file=sys.stderr, flush=True)


class IntegrityError(Exception):
    pass


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _check_relative(path, where):
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise IntegrityError(f"{where}: file path '{path}' is not a plain relative path")
    return path


def pinned_files(environ):
    """The pinned manifest's digest and its {relative path: sha256 digest} of every file, from the environment.

    The manifest comes from the Deployment (env), never from the model directory: its SHA-256 must equal the pinned
    digest, so it cannot be replaced without changing the pin (which admission checks).
    """
    pin = environ.get("MODEL_MANIFEST_DIGEST", "")
    if not DIGEST.match(pin):
        raise IntegrityError("MODEL_MANIFEST_DIGEST is not set to sha256:<64 hex>: the Deployment must pin the model by "
                             "its manifest digest (harden deploy renders it)")
    encoded = environ.get("MODEL_MANIFEST", "")
    if not encoded:
        raise IntegrityError("MODEL_MANIFEST is not set: the Deployment must pass the pinned manifest (base64)")
    if len(encoded) > MAX_MANIFEST_BYTES * 4 // 3 + 4:
        raise IntegrityError(f"MODEL_MANIFEST is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise IntegrityError("MODEL_MANIFEST is not base64") from None
    actual = "sha256:" + hashlib.sha256(raw).hexdigest()
    if actual != pin:
        raise IntegrityError(f"MODEL_MANIFEST is not the pinned manifest: its digest is {actual}, the pin is {pin}")
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise IntegrityError(f"pinned manifest {pin} is not JSON") from None
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list) or not layers:
        raise IntegrityError(f"pinned manifest {pin} has no layers")
    expected = {}
    for i, layer in enumerate(layers):
        where = f"pinned manifest {pin} layer {i}"
        annotations = layer.get("annotations") if isinstance(layer, dict) else None
        annotations = annotations if isinstance(annotations, dict) else {}
        path, digest = annotations.get(PATH_ANNOTATION), annotations.get(SHA256_ANNOTATION)
        if not isinstance(path, str) or not isinstance(digest, str):
            raise IntegrityError(f"{where} has no {PATH_ANNOTATION} and {SHA256_ANNOTATION}: its file cannot be checked; "
                                 "pack the model with 'harden model pack'")
        _check_relative(path, where)
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise IntegrityError(f"{where}: {SHA256_ANNOTATION} of '{path}' is '{digest}', not 64 lower-case hex digits")
        if path in expected:
            raise IntegrityError(f"{where}: '{path}' is listed twice")
        expected[path] = "sha256:" + digest
    return pin, expected


def verify_model_dir(model_dir, expected):
    """Every file under model_dir must be listed with a matching digest; nothing else may be there."""
    present = set()
    for root, dirs, files in os.walk(model_dir, followlinks=False):
        for name in sorted(dirs + files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, model_dir).replace(os.sep, "/")
            # Kubernetes' atomic-writer volumes keep ..data/..<timestamp> links; an image volume and our fetch have none.
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                raise IntegrityError(f"{rel} is a symbolic link: a model directory holds regular files only")
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise IntegrityError(f"{rel} is not a regular file")
            present.add(rel)
    unlisted = sorted(present - set(expected))
    if unlisted:
        raise IntegrityError(f"files not in the pinned manifest: {', '.join(unlisted)}")
    missing = sorted(set(expected) - present)
    if missing:
        raise IntegrityError(f"files of the pinned manifest missing in {model_dir}: {', '.join(missing)}")
    for rel, digest in sorted(expected.items()):
        if _sha256_file(os.path.join(model_dir, rel)) != digest:
            raise IntegrityError(f"{rel} does not match its digest in the pinned manifest ({digest})")
    return sorted(expected)


def read_verified(model_dir, name, expected):
    """The bytes of one model file, hashed again as they are loaded (a file swapped after the check is caught)."""
    if name not in expected:
        raise IntegrityError(f"{name} is not in the pinned manifest")
    with open(os.path.join(model_dir, name), "rb") as f:
        data = f.read()
    if "sha256:" + hashlib.sha256(data).hexdigest() != expected[name]:
        raise IntegrityError(f"{name} changed after it was checked: it no longer matches the pinned manifest")
    return data


class Model:
    """A TorchScript causal LM over a character vocabulary (tokenizer.json: {"vocab": [...]})."""

    def __init__(self, model_dir, expected, digest):
        self.digest = digest
        self.vocab = json.loads(read_verified(model_dir, "tokenizer.json", expected))["vocab"]
        self.index = {c: i for i, c in enumerate(self.vocab)}
        weights = read_verified(model_dir, "model.pt", expected)
        self.module = torch.jit.load(io.BytesIO(weights), map_location="cpu")
        self.module.eval()

    def generate(self, prompt, max_new_tokens):
        ids = [self.index.get(c, 0) for c in prompt] or [0]
        out = []
        with torch.inference_mode():
            for _ in range(max_new_tokens):
                logits = self.module(torch.tensor([ids], dtype=torch.long))
                nxt = int(torch.argmax(logits[0, -1]).item())
                ids.append(nxt)
                out.append(self.vocab[nxt])
        return "".join(out)


class GenerateRequest(BaseModel):
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    max_new_tokens: int = Field(default=16, ge=1, le=MAX_NEW_TOKENS)


def create_app(model):
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def limits_and_logging(request: Request, call_next):
        started = time.monotonic()
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_REQUEST_BYTES):
            response = JSONResponse({"error": "request too large"}, status_code=413)
        elif request.method == "POST" and length is None:
            response = JSONResponse({"error": "content-length required"}, status_code=411)
        else:
            response = await call_next(request)
        response.headers["X-Model-Digest"] = model.digest
        log("info", "request", method=request.method, path=request.url.path, status=response.status_code,
            ms=round((time.monotonic() - started) * 1000, 1), model=model.digest)
        return response

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz():
        return {"status": "ready", "vocab": len(model.vocab), "model": model.digest}

    @app.post("/v1/generate")
    async def generate(req: GenerateRequest):
        loop = asyncio.get_running_loop()
        try:
            text = await asyncio.wait_for(
                loop.run_in_executor(None, model.generate, req.prompt, req.max_new_tokens), timeout=TIMEOUT)
        except asyncio.TimeoutError:
            return JSONResponse({"error": "generation timed out"}, status_code=503)
        return {"text": text, "tokens": req.max_new_tokens, "model": model.digest}

    return app


def main():
    try:
        digest, expected = pinned_files(os.environ)
        files = verify_model_dir(MODEL_DIR, expected)
        model = Model(MODEL_DIR, expected, digest)
    except (IntegrityError, OSError, ValueError, KeyError) as e:
        log("error", "model_integrity_failed", model_dir=MODEL_DIR, reason=str(e),
            model=os.environ.get("MODEL_MANIFEST_DIGEST", ""))
        sys.exit(3)
    log("info", "model_verified", model_dir=MODEL_DIR, files=len(files), model=digest)
    torch.set_num_threads(max(1, int(os.environ.get("TORCH_THREADS", "1"))))
    log("info", "model_loaded", vocab=len(model.vocab), model=digest)
    uvicorn.run(create_app(model), host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "8080")),
                log_config=None, access_log=False, server_header=False)


if __name__ == "__main__":
    main()
