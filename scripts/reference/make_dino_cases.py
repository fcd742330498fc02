"""Reference cases for DINO's loss, centre and teacher update (Tests/Fixtures/dino/dino_cases.json).

An independent implementation of main_dino.py's DINOLoss written out as DINO does it: the student output
divided by τ_s and chunked into its crops, the teacher's centred output sharpened by τ_t and chunked into
its two global crops, the cross-entropy of every (teacher crop q, student crop v ≠ q) pair averaged over
the batch, then over the pairs; torch autograd for the gradient with respect to the student's logits; the
centre's EMA update from the teacher's batch mean; the teacher's EMA of the student. Fixed inputs from a seeded
generator, written out with the results.

    python scripts/reference/make_dino_cases.py   (torch from PyPI)
"""
import json, os
import torch
import torch.nn.functional as F


def dino_loss(student_output, teacher_output, center, ncrops, student_temp, teacher_temp):
    student_out = (student_output / student_temp).chunk(ncrops)
    teacher_out = F.softmax((teacher_output - center) / teacher_temp, dim=-1).detach().chunk(2)
    total, n = 0, 0
    for iq, q in enumerate(teacher_out):
        for v in range(len(student_out)):
            if v == iq:
                continue
            loss = torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1)
            total += loss.mean()
            n += 1
    return total / n


def new_center(center, teacher_output, momentum):
    batch_center = torch.sum(teacher_output, dim=0, keepdim=True) / len(teacher_output)
    return center * momentum + batch_center * (1 - momentum)


def case(seed, batch, k, ncrops, student_temp, teacher_temp, center_momentum, teacher_momentum):
    g = torch.Generator().manual_seed(seed)
    student = (torch.randn(ncrops * batch, k, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    teacher = torch.randn(2 * batch, k, generator=g, dtype=torch.float64) * 3
    center = torch.randn(1, k, generator=g, dtype=torch.float64) * 0.5
    loss = dino_loss(student, teacher, center, ncrops, student_temp, teacher_temp)
    loss.backward()
    t_params = torch.randn(7, generator=g, dtype=torch.float64)
    s_params = torch.randn(7, generator=g, dtype=torch.float64)
    ema = t_params * teacher_momentum + (1 - teacher_momentum) * s_params
    return {
        "batch": batch, "k": k, "ncrops": ncrops, "student_temp": student_temp, "teacher_temp": teacher_temp,
        "center_momentum": center_momentum, "teacher_momentum": teacher_momentum,
        "student": student.detach().flatten().tolist(), "teacher": teacher.flatten().tolist(),
        "center": center.flatten().tolist(), "loss": loss.item(), "grad": student.grad.flatten().tolist(),
        "new_center": new_center(center, teacher, center_momentum).flatten().tolist(),
        "teacher_params": t_params.tolist(), "student_params": s_params.tolist(), "ema": ema.tolist(),
    }


cases = [case(0, 3, 16, 2, 0.1, 0.04, 0.9, 0.996), case(1, 4, 32, 6, 0.1, 0.07, 0.9, 0.99),
         case(2, 2, 8, 10, 0.2, 0.05, 0.5, 0.5)]
out = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "dino", "dino_cases.json")
with open(out, "w") as f:
    json.dump({"generator": "scripts/reference/make_dino_cases.py", "torch": torch.__version__, "cases": cases}, f)
print("wrote", os.path.normpath(out), len(cases), "cases")
