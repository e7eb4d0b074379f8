/** Where the guest kernel's vCPU worker lives: give it to `new Hypervisor({ vcpuEntry })`. */
export const GUEST_KERNEL_URL = new URL('./kernel.js', import.meta.url);
