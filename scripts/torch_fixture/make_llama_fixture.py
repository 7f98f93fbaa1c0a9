#!/usr/bin/python3
"""Writes the PyTorch reference fixture for ncl's LLaMA model (tests/nn/test_llama.cpp).

A tiny LLaMA-3-style model in float64 (dim 16, 2 layers, 4 heads, 2 kv heads, ffn 32, vocab 64,
a 10-way answer head at the last position, seq 6, batch 2; RMSNorm, rotate-half RoPE with
theta 500000, grouped-query causal attention, SwiGLU), the same architecture as
/work/shared/bench/torch_llama.py, with Hugging Face LLaMA tensor names. The fixture holds the
weights, the inputs, the logits, the loss and the gradient of every weight ("grad.<name>"),
plus one tensor in F32, F16 and BF16 to test the reader's conversions.

Run with Debian's torch:  /usr/bin/python3 scripts/torch_fixture/make_llama_fixture.py
(default output: tests/nn/data/llama_tiny.safetensors). torch 1.13 has no safetensors support
and Debian has no python3-safetensors, so a minimal writer of the format is included here.

With --check FILE, instead loads an ncl-written checkpoint of this configuration (F32 or F64)
with a minimal reader, runs the fixture's inputs through it and prints the loss, so files
written by ncl are shown to load in PyTorch.
"""
import argparse
import json
import os
import struct

import torch
import torch.nn.functional as F

CONFIG = dict(dim=16, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=32, vocab_size=64,
              output_size=10, norm_eps=1e-5, rope_theta=500000.0, seq=6, batch=2)

DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
          torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32"}


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, torch tensor). Header padded with spaces to 8 bytes."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors:
        t = t.detach().contiguous().cpu()
        if t.dtype in (torch.float16, torch.bfloat16):
            data = t.view(torch.int16).numpy().tobytes()
        else:
            data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    """Minimal reader: F32/F64/I64 tensors as torch tensors."""
    import numpy as np
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    kinds = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        arr = np.frombuffer(data[b:en], dtype=kinds[e["dtype"]]).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def weight_shapes(c):
    d, hd = c["dim"], c["dim"] // c["n_heads"]
    shapes = {"model.embed_tokens.weight": (c["vocab_size"], d)}
    for i in range(c["n_layers"]):
        p = "model.layers.%d." % i
        shapes.update({
            p + "input_layernorm.weight": (d,),
            p + "self_attn.q_proj.weight": (c["n_heads"] * hd, d),
            p + "self_attn.k_proj.weight": (c["n_kv_heads"] * hd, d),
            p + "self_attn.v_proj.weight": (c["n_kv_heads"] * hd, d),
            p + "self_attn.o_proj.weight": (d, c["n_heads"] * hd),
            p + "post_attention_layernorm.weight": (d,),
            p + "mlp.gate_proj.weight": (c["ffn_dim"], d),
            p + "mlp.up_proj.weight": (c["ffn_dim"], d),
            p + "mlp.down_proj.weight": (d, c["ffn_dim"]),
        })
    shapes["model.norm.weight"] = (d,)
    shapes["lm_head.weight"] = (c["output_size"], d)
    return shapes


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, theta):  # x (B, H, T, D), rotate-half pairs (i, i + D/2)
    T, D = x.shape[-2], x.shape[-1]
    inv = 1.0 / theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D)
    ang = torch.outer(torch.arange(T, dtype=torch.float64), inv)
    ang = torch.cat([ang, ang], dim=-1)
    x1, x2 = x.chunk(2, dim=-1)
    return x * ang.cos() + torch.cat([-x2, x1], dim=-1) * ang.sin()


def forward(w, tokens, c):
    B, T = tokens.shape
    H, KV, hd = c["n_heads"], c["n_kv_heads"], c["dim"] // c["n_heads"]
    x = F.embedding(tokens, w["model.embed_tokens.weight"])
    mask = torch.full((T, T), float("-inf"), dtype=x.dtype).triu(1)
    for i in range(c["n_layers"]):
        p = "model.layers.%d." % i
        h = rms_norm(x, w[p + "input_layernorm.weight"], c["norm_eps"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(B, T, H, hd).transpose(1, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(B, T, KV, hd).transpose(1, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(B, T, KV, hd).transpose(1, 2)
        q, k = rope(q, c["rope_theta"]), rope(k, c["rope_theta"])
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        att = (q @ k.transpose(-1, -2)) * hd ** -0.5 + mask
        y = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, T, H * hd)
        x = x + y @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], c["norm_eps"])
        g = h @ w[p + "mlp.gate_proj.weight"].T
        u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (F.silu(g) * u) @ w[p + "mlp.down_proj.weight"].T
    last = rms_norm(x[:, -1], w["model.norm.weight"], c["norm_eps"])
    return last @ w["lm_head.weight"].T


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "nn", "data",
                                                  "llama_tiny.safetensors"))
    ap.add_argument("--check", help="load an ncl checkpoint of this config and print its loss")
    args = ap.parse_args()
    c = CONFIG
    torch.manual_seed(20240611)
    tokens = torch.randint(c["vocab_size"], (c["batch"], c["seq"]))
    targets = torch.randint(c["output_size"], (c["batch"],))

    if args.check:
        w = {k: v.double() for k, v in read_safetensors(args.check).items()}
        loss = F.cross_entropy(forward(w, tokens, c), targets)
        print("loss %.10f" % loss.item())
        return

    w = {}
    for name, shape in weight_shapes(c).items():
        if len(shape) == 1:
            t = 1.0 + 0.1 * torch.randn(shape, dtype=torch.float64)
        else:
            t = torch.randn(shape, dtype=torch.float64) * (0.5 if "embed" in name else shape[1] ** -0.5)
        w[name] = t.requires_grad_(True)
    logits = forward(w, tokens, c)
    loss = F.cross_entropy(logits, targets)
    loss.backward()

    tensors = [(n, t) for n, t in w.items()]
    tensors += [("input.tokens", tokens), ("input.targets", targets),
                ("output.logits", logits), ("output.loss", loss.reshape(()))]
    tensors += [("grad." + n, t.grad) for n, t in w.items()]
    probe = w["model.layers.0.mlp.up_proj.weight"].detach()
    tensors += [("convert.f32", probe.float()), ("convert.f16", probe.half()),
                ("convert.bf16", probe.bfloat16()),
                ("convert.f16_as_f64", probe.half().double()),
                ("convert.bf16_as_f64", probe.bfloat16().double())]
    meta = {k: str(v) for k, v in c.items()}
    meta["generator"] = "scripts/torch_fixture/make_llama_fixture.py, torch " + torch.__version__
    write_safetensors(os.path.normpath(args.out), tensors, meta)
    print("wrote %s: loss %.10f" % (os.path.normpath(args.out), loss.item()))


if __name__ == "__main__":
    main()
