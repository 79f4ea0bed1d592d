# isa-debug-exit (built with: as -o e.o isa-debug-exit.S && ld -s -n --build-id=none -o isa-debug-exit e.o;
# its base64 is in checklib.sh): reads one byte from stdin and writes it to I/O port 0xf4,
# where QEMU's isa-debug-exit device makes QEMU exit with (byte<<1)|1.
# The guest kernel has no /dev/port, so this needs ioperm() and an OUT.
# Exits 1 if it is still running afterwards (no such device, or no permission).
        .globl _start
        .text
_start:
        mov     $0xf4, %edi             # ioperm(0xf4, 1, 1)
        mov     $1, %esi
        mov     $1, %edx
        mov     $173, %eax
        syscall
        test    %rax, %rax
        jnz     1f
        xor     %edi, %edi              # read(0, rsp-16, 1)
        lea     -16(%rsp), %rsi
        mov     $1, %edx
        xor     %eax, %eax
        syscall
        cmp     $1, %rax
        jne     1f
        mov     -16(%rsp), %al
        mov     $0xf4, %dx
        out     %al, %dx
1:      mov     $1, %edi                # exit(1)
        mov     $60, %eax
        syscall
