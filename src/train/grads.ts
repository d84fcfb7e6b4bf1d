// Whole-model gradient helpers: the global L2 norm (also the non-finite check) and
// clipping to a maximum norm (torch.nn.utils.clip_grad_norm_).
import type { Parameter } from '../nn/module.js';

/** L2 norm of all gradients together; NaN or Infinity when any value is not finite. */
export function gradNorm(params: readonly Parameter[]): number {
  let sum = 0;
  for (const p of params) {
    const g = p.grad?.data;
    if (!g) continue;
    for (let i = 0; i < g.length; i++) sum += g[i]! * g[i]!;
  }
  return Math.sqrt(sum);
}

/** Scale every gradient so their global norm is at most maxNorm (eps 1e-6 as PyTorch). */
export function clipGradNorm(params: readonly Parameter[], maxNorm: number, norm = gradNorm(params)): void {
  const factor = maxNorm / (norm + 1e-6);
  if (factor >= 1) return;
  for (const p of params) {
    const g = p.grad?.data;
    if (!g) continue;
    for (let i = 0; i < g.length; i++) g[i] = g[i]! * factor;
  }
}
