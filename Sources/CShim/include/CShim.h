// CShim: fixed-arity wrappers for the Linux calls Swift cannot reach directly.
//
// Swift cannot call the variadic syscall(2) or ioctl(2), so every call earlyext needs gets a small
// static inline function here. Each returns what the kernel returns (-1 with errno set on failure);
// the Swift side (SystemCalls.swift) turns that into a thrown Errno and retries on EINTR.
//
// Debian 12 ships glibc 2.36 and kernel headers for 6.1. Anything newer is defined below behind
// #ifndef, with the value from the upstream kernel's uapi headers.
#ifndef EARLYEXT_CSHIM_H
#define EARLYEXT_CSHIM_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <linux/loop.h>

// MARK: - Constants missing from Debian 12's headers

#ifndef MOVE_MOUNT_BENEATH
#define MOVE_MOUNT_BENEATH 0x00000200 /* Linux 6.5 */
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_SIZE_VER0
#define MOUNT_ATTR_SIZE_VER0 32
#endif
#ifndef LOOP_CONFIGURE
#define LOOP_CONFIGURE 0x4C0A
#endif
#ifndef LOOP_CTL_GET_FREE
#define LOOP_CTL_GET_FREE 0x4C82
#endif
#ifndef BLKGETSIZE64
#define BLKGETSIZE64 _IOR(0x12, 114, size_t) /* <linux/fs.h> clashes with <sys/mount.h> */
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* openat2(2)'s RESOLVE_* flags (<linux/openat2.h>, Linux 5.6). */
static const uint64_t ee_RESOLVE_NO_MAGICLINKS = 0x02;
static const uint64_t ee_RESOLVE_NO_SYMLINKS = 0x04;
static const uint64_t ee_RESOLVE_BENEATH = 0x08;

/* _GNU_SOURCE-only flags. The shim cannot define _GNU_SOURCE itself: the C modules Swift builds
 * must agree on glibc's types. The open(2) flags differ between architectures, so they come from
 * glibc's always-defined internal names (<bits/fcntl-linux.h>); the AT_ flags are the same
 * everywhere. */
static const int ee_O_PATH = __O_PATH;
static const int ee_AT_EMPTY_PATH = 0x1000;
static const int ee_AT_NO_AUTOMOUNT = 0x800;
static const int ee_O_DIRECT = __O_DIRECT;

/* Swift imports anonymous enums poorly; give the fsconfig commands plain integer names. */
static const unsigned int ee_FSCONFIG_SET_FLAG = 0;
static const unsigned int ee_FSCONFIG_SET_STRING = 1;
static const unsigned int ee_FSCONFIG_SET_PATH = 3;
static const unsigned int ee_FSCONFIG_SET_FD = 5;
static const unsigned int ee_FSCONFIG_CMD_CREATE = 6;

// MARK: - The new mount API (syscall(2) wrappers)

/// fsopen(2)
static inline int ee_fsopen(const char *fsname, unsigned int flags) {
    return (int)syscall(SYS_fsopen, fsname, flags);
}

/// fsconfig(2)
static inline int ee_fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux) {
    return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}

/// fsmount(2)
static inline int ee_fsmount(int fd, unsigned int flags, unsigned int attr_flags) {
    return (int)syscall(SYS_fsmount, fd, flags, attr_flags);
}

/// open_tree(2)
static inline int ee_open_tree(int dirfd, const char *path, unsigned int flags) {
    return (int)syscall(SYS_open_tree, dirfd, path, flags);
}

/// move_mount(2)
static inline int ee_move_mount(int from_dirfd, const char *from_path,
                                int to_dirfd, const char *to_path, unsigned int flags) {
    return (int)syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags);
}

/// mount_setattr(2), with the attribute struct spelled out so Swift need not build it.
static inline int ee_mount_setattr(int dirfd, const char *path, unsigned int flags,
                                   uint64_t attr_set, uint64_t attr_clr, uint64_t propagation) {
    struct { uint64_t attr_set, attr_clr, propagation, userns_fd; } attr = {
        attr_set, attr_clr, propagation, 0
    };
    return (int)syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof attr);
}

// MARK: - Loop devices (ioctl(2) wrappers)

/// ioctl(LOOP_CTL_GET_FREE) on /dev/loop-control: the number of a free loop device.
static inline int ee_loop_ctl_get_free(int control_fd) {
    return ioctl(control_fd, LOOP_CTL_GET_FREE);
}

/// ioctl(LOOP_CONFIGURE): bind backing_fd to the loop device in one call.
/// flags are LO_FLAGS_*; size_limit 0 means the whole file.
static inline int ee_loop_configure(int loop_fd, int backing_fd, uint32_t flags,
                                    uint32_t block_size, uint64_t offset, uint64_t size_limit,
                                    const char *file_name) {
    struct loop_config config;
    memset(&config, 0, sizeof config);
    config.fd = (uint32_t)backing_fd;
    config.block_size = block_size;
    config.info.lo_flags = flags;
    config.info.lo_offset = offset;
    config.info.lo_sizelimit = size_limit;
    if (file_name) {
        strncpy((char *)config.info.lo_file_name, file_name, LO_NAME_SIZE - 1);
    }
    return ioctl(loop_fd, LOOP_CONFIGURE, &config);
}

/// ioctl(LOOP_SET_DIRECT_IO)
static inline int ee_loop_set_direct_io(int loop_fd, unsigned long enable) {
    return ioctl(loop_fd, LOOP_SET_DIRECT_IO, enable);
}

/// ioctl(LOOP_CLR_FD)
static inline int ee_loop_clear_fd(int loop_fd) {
    return ioctl(loop_fd, LOOP_CLR_FD, 0);
}

/// ioctl(LOOP_GET_STATUS64): the flags of a bound loop device, or -1.
static inline int ee_loop_get_flags(int loop_fd, uint32_t *flags) {
    struct loop_info64 info;
    memset(&info, 0, sizeof info);
    int r = ioctl(loop_fd, LOOP_GET_STATUS64, &info);
    if (r == 0) *flags = info.lo_flags;
    return r;
}

/// ioctl(BLKGETSIZE64)
static inline int ee_blk_get_size64(int fd, uint64_t *size) {
    return ioctl(fd, BLKGETSIZE64, size);
}

// MARK: - Files

static const unsigned int ee_SYNC_FILE_RANGE_WRITE = 2;

/// sync_file_range(2): start writeback of a byte range without waiting for it.
static inline int ee_sync_file_range(int fd, int64_t offset, int64_t count, unsigned int flags) {
    return (int)syscall(SYS_sync_file_range, fd, offset, count, flags);
}

/// openat2(2) (Linux 5.6): openat with `struct open_how`, for its RESOLVE_* restrictions.
static inline int ee_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
    struct { uint64_t flags, mode, resolve; } how = { flags, 0, resolve };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/// getdents64(2): raw directory entries into `buffer`; returns the bytes filled, 0 at the end.
static inline long ee_getdents64(int fd, void *buffer, size_t size) {
    return syscall(SYS_getdents64, fd, buffer, size);
}

// MARK: - Small helpers for macros Swift cannot import

static inline unsigned int ee_major(dev_t dev) { return major(dev); }
static inline unsigned int ee_minor(dev_t dev) { return minor(dev); }
static inline uint64_t ee_makedev(unsigned int ma, unsigned int mi) { return makedev(ma, mi); }
static inline int ee_s_isdir(mode_t m) { return S_ISDIR(m); }
static inline int ee_s_isreg(mode_t m) { return S_ISREG(m); }
static inline int ee_s_isblk(mode_t m) { return S_ISBLK(m); }
static inline int ee_s_islnk(mode_t m) { return S_ISLNK(m); }
static inline int ee_s_ischr(mode_t m) { return S_ISCHR(m); }
static inline int ee_errno(void) { return errno; }
static inline void ee_set_errno(int e) { errno = e; }

#endif
