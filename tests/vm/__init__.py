"""Running the kernel tests on other kernels, under QEMU (``make test-kernels``)."""
