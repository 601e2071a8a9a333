/* Say which program each process executes, through bpf_printk and the trace pipe. */
#include <bpf/bpf_helpers.h>

SEC("tracepoint/sched/sched_process_exec")
int on_exec(void *ctx)
{
	char comm[16];

	bpf_get_current_comm(&comm, sizeof(comm));
	bpf_printk("exec: %s (pid %d)", comm, (int)(bpf_get_current_pid_tgid() >> 32));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
