/* <bpf/bpf_helpers.h> for `%%bpf --elf` cells: libbpf's own where its headers are installed
 * (Debian: libbpf-dev), else bpfnb's subset of it (<bpfnb/helpers_subset.h>);
 * -DBPFNB_HELPERS_SUBSET picks the subset anyway. A cell may leave out <linux/bpf.h>: without
 * "vmlinux.h" before it, it is included here.
 */
#ifndef BPFNB_BPF_HELPERS_H
#define BPFNB_BPF_HELPERS_H

#if __has_include_next(<bpf/bpf_helpers.h>) && !defined(BPFNB_HELPERS_SUBSET)
#if !defined(__VMLINUX_H__) && !defined(__LINUX_BPF_H__)
#include <linux/bpf.h>
#endif
#include_next <bpf/bpf_helpers.h>
#else
#include <bpfnb/helpers_subset.h>
#endif

#endif
