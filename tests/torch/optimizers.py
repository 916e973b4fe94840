"""A few training steps of every optimizer and schedule against torch.optim.

tests/tools/train_dump trains a small model in nnc's reference interpreter
and prints its initial parameters, batches, losses, learning rates and final
parameters; this script replays the same steps in PyTorch (float64) with the
matching optimizer and scheduler and compares everything to 1e-10.
Exit status 77 means PyTorch is not installed (CTest: skipped).

    /usr/bin/python3 tests/torch/optimizers.py build/tests/train_dump
"""
import json
import os
import subprocess
import sys
import tempfile

from common import tensor, torch  # skips (exit 77) without PyTorch
import torch.nn.functional as F
STEPS, BATCH, PER_EPOCH = 6, 5, 2

# (.nn optimizer, .nn schedule, PyTorch optimizer, PyTorch scheduler or None)
CASES = [
    ("sgd(lr=0.1)", "constant", lambda p: torch.optim.SGD(p, lr=0.1), None),
    ("sgd(lr=0.1, momentum=0.9)", "constant",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), None),
    ("sgd(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)", "constant",
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01), None),
    ("sgd(lr=0.1, momentum=0.9, nesterov=true, weight_decay=1e-3)", "step(every=1, gamma=0.5)",
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5)),
    ("adam(lr=0.01)", "constant", lambda p: torch.optim.Adam(p, lr=0.01), None),
    ("adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1)",
     "exponential(gamma=0.7)",
     lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
     lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.7)),
    ("adamw(lr=0.01)", "cosine(min_lr=0.001)", lambda p: torch.optim.AdamW(p, lr=0.01),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=3, eta_min=0.001)),
    ("adamw(lr=0.02, weight_decay=0.1)", "step(every=2, gamma=0.1)",
     lambda p: torch.optim.AdamW(p, lr=0.02, weight_decay=0.1),
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.1)),
]



def main():
    dump = sys.argv[1]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for opt, sched, make_opt, make_sched in CASES:
            path = os.path.join(tmp, "case.nn")
            with open(path, "w") as f:
                f.write("model M(x: [4]) { x -> fc1: dense(5) -> tanh -> fc2: dense(3) }\n"
                        f"loss cross_entropy\noptimizer {opt}\nschedule {sched}\n"
                        "train { epochs 3 }\n")
            out = subprocess.run([dump, path, str(STEPS), str(BATCH), str(PER_EPOCH), "4"],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"FAIL {opt}: train_dump failed: {out.stderr}")
                failures += 1
                continue
            run = json.loads(out.stdout)
            params = {k: tensor(v).requires_grad_() for k, v in run["initial"].items()}
            optimizer = make_opt(list(params.values()))
            scheduler = make_sched(optimizer) if make_sched else None
            worst = 0.0
            for t, step in enumerate(run["steps"], start=1):
                lr = optimizer.param_groups[0]["lr"]
                x, labels = tensor(step["x"]), tensor(step["labels"]).long()
                h = torch.tanh(F.linear(x, params["fc1.weight"], params["fc1.bias"]))
                loss = F.cross_entropy(F.linear(h, params["fc2.weight"], params["fc2.bias"]), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if scheduler and t % PER_EPOCH == 0:
                    scheduler.step()
                worst = max(worst, abs(loss.item() - step["loss"]), abs(lr - step["lr"]))
            for k, v in params.items():
                worst = max(worst, (v.detach() - tensor(run["final"][k])).abs().max().item())
            ok = worst < 1e-10
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} optimizer {opt}, schedule {sched}: "
                  f"largest difference {worst:.3g}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
