/* <bpf/bpf_tracing.h> for `%%bpf --elf` cells: libbpf's own where its headers are installed
 * (Debian: libbpf-dev), else bpfnb's subset of it (<bpfnb/tracing_subset.h>);
 * -DBPFNB_HELPERS_SUBSET picks the subset anyway. A cell may leave out <linux/ptrace.h>:
 * without "vmlinux.h" before it, it is included here for struct pt_regs.
 */
#ifndef BPFNB_BPF_TRACING_H
#define BPFNB_BPF_TRACING_H

#if __has_include_next(<bpf/bpf_tracing.h>) && !defined(BPFNB_HELPERS_SUBSET)
#if !defined(__VMLINUX_H__)
#include <linux/ptrace.h>
#endif
#if defined(__TARGET_ARCH_x86) && !defined(__PT_REGS_CAST)
/* As with bpfnb's subset, PT_REGS_PARM1(ctx) and the others also take a void *ctx. */
#define __PT_REGS_CAST(x) ((const struct pt_regs *)(x))
#endif
#include_next <bpf/bpf_tracing.h>
#else
#include <bpfnb/tracing_subset.h>
#endif

#endif
