/* bpfnb's subset of libbpf's <bpf/bpf_tracing.h>, which <bpf/bpf_tracing.h> gives `%%bpf --elf`
 * cells where libbpf's headers are not installed: reading the registers a kprobe or uprobe
 * program receives (struct pt_regs *ctx).
 *
 * Register slots are read by their index in the architecture's struct pt_regs, so this works
 * with or without "vmlinux.h".
 */
#ifndef BPFNB_TRACING_SUBSET_H
#define BPFNB_TRACING_SUBSET_H

#define __BPFNB_REG(ctx, slot) (((const unsigned long *)(ctx))[slot])

#if defined(__TARGET_ARCH_arm64) || defined(__aarch64__)
/* struct user_pt_regs { u64 regs[31]; u64 sp; u64 pc; u64 pstate; } */
#define PT_REGS_PARM1(x) __BPFNB_REG(x, 0)
#define PT_REGS_PARM2(x) __BPFNB_REG(x, 1)
#define PT_REGS_PARM3(x) __BPFNB_REG(x, 2)
#define PT_REGS_PARM4(x) __BPFNB_REG(x, 3)
#define PT_REGS_PARM5(x) __BPFNB_REG(x, 4)
#define PT_REGS_RC(x) __BPFNB_REG(x, 0)
#define PT_REGS_SP(x) __BPFNB_REG(x, 31)
#define PT_REGS_IP(x) __BPFNB_REG(x, 32)
#else
/* x86-64 struct pt_regs: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di orig_ax ip cs
 * flags sp ss */
#define PT_REGS_PARM1(x) __BPFNB_REG(x, 14)
#define PT_REGS_PARM2(x) __BPFNB_REG(x, 13)
#define PT_REGS_PARM3(x) __BPFNB_REG(x, 12)
#define PT_REGS_PARM4(x) __BPFNB_REG(x, 11)
#define PT_REGS_PARM5(x) __BPFNB_REG(x, 9)
#define PT_REGS_RC(x) __BPFNB_REG(x, 10)
#define PT_REGS_IP(x) __BPFNB_REG(x, 16)
#define PT_REGS_SP(x) __BPFNB_REG(x, 19)
#endif

#endif
