"""HardenImage inference server: FastAPI in front of a TorchScript language model.

Security properties (STRIDE):
- Tampering: the model is loaded only after every file in MODEL_DIR matches MANIFEST.sha256 (and no unlisted
  file is present); otherwise the process exits before it serves anything.
- Denial of service: request bodies are capped (MAX_REQUEST_BYTES), prompts and generated tokens are capped,
  and each generation has a deadline (GENERATE_TIMEOUT_SECONDS).
- Information disclosure: logs are JSON lines with method, path, status and duration, never request or
  response bodies (prompts may carry patient data).
"""
import asyncio
import hashlib
import json
import os
import sys
import time

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

MODEL_DIR = os.environ.get("MODEL_DIR", "/models")
MANIFEST = "MANIFEST.sha256"
MAX_REQUEST_BYTES = int(os.environ.get("MAX_REQUEST_BYTES", "16384"))
MAX_PROMPT_CHARS = int(os.environ.get("MAX_PROMPT_CHARS", "4096"))
MAX_NEW_TOKENS = int(os.environ.get("MAX_NEW_TOKENS", "64"))
TIMEOUT = float(os.environ.get("GENERATE_TIMEOUT_SECONDS", "10"))


def log(level, event, **fields):
    record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": level, "event": event}
    record.update(fields)
    print(json.dumps(record, sort_keys=True), file=sys.stderr, flush=True)


class IntegrityError(Exception):
    pass


def verify_model_dir(model_dir):
    """Checks every file against MANIFEST.sha256 (sha256sum format); returns the verified file names."""
    manifest_path = os.path.join(model_dir, MANIFEST)
    if not os.path.isfile(manifest_path):
        raise IntegrityError(f"{MANIFEST} missing in {model_dir}")
    expected = {}
    with open(manifest_path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            digest, _, name = line.partition("  ")
            name = name.lstrip("*")
            if len(digest) != 64 or not name or "/" in name or name.startswith("."):
                raise IntegrityError(f"{MANIFEST} line {n} is not '<sha256>  <file>'")
            expected[name] = digest.lower()
    present = {e for e in os.listdir(model_dir) if e != MANIFEST and not e.startswith("..")}
    unlisted = sorted(present - set(expected))
    if unlisted:
        raise IntegrityError(f"files not in {MANIFEST}: {', '.join(unlisted)}")
    for name, digest in sorted(expected.items()):
        path = os.path.join(model_dir, name)
        if not os.path.isfile(path):
            raise IntegrityError(f"{name} listed in {MANIFEST} is missing")
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != digest:
            raise IntegrityError(f"{name} does not match its SHA-256 in {MANIFEST}")
    return sorted(expected)


class Model:
    """A TorchScript causal LM over a character vocabulary (tokenizer.json: {"vocab": [...]})."""

    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8") as f:
            self.vocab = json.load(f)["vocab"]
        self.index = {c: i for i, c in enumerate(self.vocab)}
        self.module = torch.jit.load(os.path.join(model_dir, "model.pt"), map_location="cpu")
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
        log("info", "request", method=request.method, path=request.url.path, status=response.status_code,
            ms=round((time.monotonic() - started) * 1000, 1))
        return response

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz():
        return {"status": "ready", "vocab": len(model.vocab)}

    @app.post("/v1/generate")
    async def generate(req: GenerateRequest):
        loop = asyncio.get_running_loop()
        try:
            text = await asyncio.wait_for(
                loop.run_in_executor(None, model.generate, req.prompt, req.max_new_tokens), timeout=TIMEOUT)
        except asyncio.TimeoutError:
            return JSONResponse({"error": "generation timed out"}, status_code=503)
        return {"text": text, "tokens": req.max_new_tokens}

    return app


def main():
    try:
        files = verify_model_dir(MODEL_DIR)
    except (IntegrityError, OSError) as e:
        log("error", "model_integrity_failed", model_dir=MODEL_DIR, reason=str(e))
        sys.exit(3)
    log("info", "model_verified", model_dir=MODEL_DIR, files=len(files))
    model = Model(MODEL_DIR)
    torch.set_num_threads(max(1, int(os.environ.get("TORCH_THREADS", "1"))))
    log("info", "model_loaded", vocab=len(model.vocab))
    uvicorn.run(create_app(model), host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "8080")),
                log_config=None, access_log=False, server_header=False)


if __name__ == "__main__":
    main()
