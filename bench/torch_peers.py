"""The PyTorch peers of ncl's LLaMA training step (BM_llama_train_step and its variants).

shared/bench/torch_llama.py is the reference model (RMSNorm, RoPE, GQA, SwiGLU, the LLaMA 3
embedding of 128,256 rows, a 128-way answer head, AdamW); this script imports it and times
one training step (zero_grad, forward, cross-entropy, backward, optimiser step) in three
variants, so that ncl's step, whose embedding gradient is sparse and whose AdamW updates only
the rows a batch used, has a fair peer:

  dense   the embedding a dense parameter: AdamW sweeps all 128,256 rows (torch_llama's `train`)
  sparse  nn.Embedding(sparse=True) and torch.optim.SparseAdam for the embedding (only the
          batch's rows), AdamW for the rest: the fair peer of ncl's lazy rows
  frozen  the embedding not trained at all (torch_llama's `frozen`: the blocks alone)

It refuses to report anything when torch does not run on OpenBLAS: Debian's python3-torch
uses whatever libblas.so.3 the alternatives system points to, and the reference BLAS is
about 10x slower, which makes any comparison meaningless. Run it through shared/bench's
tuned_env.sh (which puts the OpenMP build of OpenBLAS first):

  sh ../shared/bench/tuned_env.sh /usr/bin/python3 bench/torch_peers.py --shared ../shared/bench

Output: comment lines about the environment, then CSV
  impl,d_model,kv_heads,seq,batch,variant,step_ms,tokens_per_s
(the median of timed steps after warm-up). Exit status 3 when the BLAS is not OpenBLAS.
"""
import argparse
import os
import sys


def blas_in_use():
    """The BLAS libraries mapped into this process, after a product has run."""
    import torch

    torch.ones(64, 64) @ torch.ones(64, 64)
    with open("/proc/self/maps") as f:
        return sorted({line.split()[-1] for line in f if "blas" in line and ".so" in line})


def refuse_reference_blas():
    libs = blas_in_use()
    # torch calls sgemm through libblas.so.3; a reference libblas.so.3 beside OpenBLAS's
    # LAPACK (LD_LIBRARY_PATH pointing at Debian's blas/ folder) is still the reference BLAS.
    netlib = [p for p in libs if os.path.basename(p).startswith("libblas.so") and "openblas" not in os.path.realpath(p)]
    if netlib or not any("openblas" in os.path.realpath(p) for p in libs):
        print("torch_peers.py: error: torch runs on %s, not OpenBLAS; install libopenblas0-openmp "
              "and run through shared/bench/tuned_env.sh; no figure reported"
              % (", ".join(libs) or "no BLAS library found"), file=sys.stderr)
        sys.exit(3)
    return libs


def step_fn(torch_llama, d, kv_heads, seq, batch, variant, layers=2, heads=4):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = torch_llama.TinyLlama(d, layers, heads, kv_heads, seq)
    rest = [p for name, p in model.named_parameters() if not name.startswith("emb.")]
    optimisers = [torch.optim.AdamW(rest, lr=1e-3)]
    if variant == "dense":
        optimisers[0].add_param_group({"params": [model.emb.weight]})
    elif variant == "sparse":
        sparse = nn.Embedding(torch_llama.VOCAB, d, sparse=True)
        sparse.weight.data.copy_(model.emb.weight.data)
        model.emb = sparse
        optimisers.append(torch.optim.SparseAdam([model.emb.weight], lr=1e-3))
    elif variant == "frozen":
        model.emb.weight.requires_grad_(False)
    else:
        raise ValueError("unknown variant " + variant)
    ids = torch.randint(torch_llama.VOCAB, (batch, seq))
    y = torch.randint(torch_llama.CLASSES, (batch,))

    def step():
        for o in optimisers:
            o.zero_grad(set_to_none=True)
        F.cross_entropy(model(ids), y).backward()
        for o in optimisers:
            o.step()

    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench"),
                    help="the folder of shared/bench (torch_llama.py, benchutil.py)")
    ap.add_argument("--dims", default="128,256")
    ap.add_argument("--kv-heads", default="4,2")
    ap.add_argument("--variants", default="dense,sparse,frozen")
    ap.add_argument("--seq", type=int, default=24)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    for v in args.variants.split(","):
        if v not in ("dense", "sparse", "frozen"):
            ap.error("unknown variant '%s' (dense, sparse or frozen)" % v)
    if not os.path.isfile(os.path.join(args.shared, "torch_llama.py")):
        ap.error("no torch_llama.py in --shared %s" % args.shared)
    sys.path.insert(0, os.path.abspath(args.shared))
    import torch
    import benchutil
    import torch_llama

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    libs = refuse_reference_blas()
    benchutil.env_header("torch %s, threads=%d, BLAS %s" % (torch.__version__, torch.get_num_threads(),
                                                            ",".join(os.path.realpath(p) for p in libs)))
    print("impl,d_model,kv_heads,seq,batch,variant,step_ms,tokens_per_s", flush=True)
    for d in map(int, args.dims.split(",")):
        for kv in map(int, args.kv_heads.split(",")):
            for v in args.variants.split(","):
                step = step_fn(torch_llama, d, kv, args.seq, args.batch, v)
                ms, _ = benchutil.uncontended(lambda: benchutil.timeit(step))
                print("torch-llama,%d,%d,%d,%d,%s,%.3f,%.0f" % (d, kv, args.seq, args.batch, v, ms,
                                                              1e3 / ms * args.batch * args.seq), flush=True)
    benchutil.footer()


if __name__ == "__main__":
    main()
