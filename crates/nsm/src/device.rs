//! The NSM device, `/dev/nsm`: one ioctl per request (Linux `include/uapi/linux/nsm.h`).

use std::path::{Path, PathBuf};

use crate::{Error, NsmTransport};

/// The Nitro Secure Module device of an enclave, opened read-write and close-on-exec.
#[derive(Debug)]
pub struct NsmDevice {
    path: PathBuf,
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
}

impl NsmDevice {
    /// Opens the NSM device at `path` (normally `/dev/nsm`).
    ///
    /// # Errors
    /// [`Error::Open`] when it cannot be opened (missing outside an enclave);
    /// [`Error::Unsupported`] on operating systems other than Linux.
    pub fn open(path: &Path) -> Result<Self, Error> {
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::{Mode, OFlags};
            let fd = rustix::fs::open(
                path,
                OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOCTTY,
                Mode::empty(),
            )
            .map_err(|errno| Error::Open {
                path: path.to_owned(),
                source: errno.into(),
            })?;
            Ok(Self {
                path: path.to_owned(),
                fd,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = path;
            Err(Error::Unsupported)
        }
    }

    /// The device's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl NsmTransport for NsmDevice {
    fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, Error> {
        #[cfg(target_os = "linux")]
        {
            linux::exchange(&self.fd, request)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = request;
            Err(Error::Unsupported)
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::OwnedFd;

    use rustix::ioctl::{Opcode, Updater, opcode};

    use crate::{Error, NSM_REQUEST_MAX_SIZE, NSM_RESPONSE_MAX_SIZE};

    /// `struct nsm_iovec` (uapi `linux/nsm.h`): a user-space buffer.
    #[repr(C)]
    #[derive(Debug)]
    pub(super) struct NsmIovec {
        /// Virtual address of the buffer.
        addr: u64,
        /// Its length.
        len: u64,
    }

    /// `struct nsm_raw` (uapi `linux/nsm.h`): the request and the response buffer.
    #[repr(C)]
    #[derive(Debug)]
    pub(super) struct NsmRaw {
        request: NsmIovec,
        response: NsmIovec,
    }

    const _: () = assert!(size_of::<NsmRaw>() == 32);

    /// `NSM_IOCTL_RAW = _IOWR(NSM_MAGIC = 0x0A, 0x0, struct nsm_raw)`.
    pub(super) const NSM_IOCTL_RAW: Opcode = opcode::read_write::<NsmRaw>(0x0A, 0);

    fn to_u64(n: usize) -> u64 {
        // usize is at most 64 bits on every Linux target.
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    pub(super) fn exchange(fd: &OwnedFd, request: &[u8]) -> Result<Vec<u8>, Error> {
        if request.len() > NSM_REQUEST_MAX_SIZE {
            return Err(Error::RequestTooLarge {
                len: request.len(),
                max: NSM_REQUEST_MAX_SIZE,
            });
        }
        let mut response = vec![0_u8; NSM_RESPONSE_MAX_SIZE];
        let mut raw = NsmRaw {
            request: NsmIovec {
                addr: to_u64(request.as_ptr().expose_provenance()),
                len: to_u64(request.len()),
            },
            response: NsmIovec {
                addr: to_u64(response.as_mut_ptr().expose_provenance()),
                len: to_u64(response.len()),
            },
        };
        nsm_ioctl_raw(fd, &mut raw).map_err(|errno| Error::Ioctl(errno.into()))?;
        let len = usize::try_from(raw.response.len)
            .ok()
            .filter(|&len| len <= response.len())
            .ok_or(Error::DriverResponseLength {
                len: raw.response.len,
                capacity: response.len(),
            })?;
        response.truncate(len);
        Ok(response)
    }

    /// The one ioctl: the kernel reads `raw.request.len` bytes at `raw.request.addr`, writes
    /// at most `raw.response.len` bytes at `raw.response.addr` and stores the number
    /// written in `raw.response.len`.
    #[expect(
        unsafe_code,
        reason = "the NSM is reached only through this ioctl; rustix cannot check its operand"
    )]
    fn nsm_ioctl_raw(fd: &OwnedFd, raw: &mut NsmRaw) -> rustix::io::Result<()> {
        // SAFETY: NSM_IOCTL_RAW is `_IOWR(0x0A, 0, struct nsm_raw)` and `NsmRaw` is
        // `#[repr(C)]` with the layout of `struct nsm_raw` (two `{u64 addr; u64 len}`,
        // 32 bytes, asserted above), so the kernel reads and writes exactly `*raw`, which
        // the `&mut` borrow keeps alive and unaliased for the call. Its two iovecs point at
        // the caller's request slice (read only) and response vector (written, at most its
        // length), both borrowed by the caller across this call and of exactly the lengths
        // given; the kernel touches no other memory. The call is synchronous: nothing is
        // retained after it returns. `fd` was opened from the path the operator configured
        // for the NSM; any other device there receives this opcode and operand, which
        // describe only the two buffers above.
        unsafe { rustix::ioctl::ioctl(fd, Updater::<NSM_IOCTL_RAW, NsmRaw>::new(raw)) }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        fn opcode_is_iowr_0x0a_0_of_32_bytes() {
            // _IOC(dir = READ|WRITE (3) << 30, size = 32 << 16, type = 0x0A << 8, nr = 0)
            assert_eq!(u64::from(NSM_IOCTL_RAW), 0xC020_0A00);
        }

        #[test]
        fn exchange_refuses_a_request_over_the_driver_limit_with_request_too_large() {
            let file = std::fs::File::open("/dev/null").unwrap();
            let fd = OwnedFd::from(file);
            let err = exchange(&fd, &[0; NSM_REQUEST_MAX_SIZE + 1]).unwrap_err();
            assert!(matches!(
                err,
                Error::RequestTooLarge {
                    len: 4097,
                    max: 4096
                }
            ));
        }

        #[test]
        fn exchange_on_a_device_that_is_not_the_nsm_fails_with_ioctl() {
            // /dev/null has no ioctls: the kernel answers ENOTTY, and nothing is read or
            // written.
            let file = std::fs::File::open("/dev/null").unwrap();
            let fd = OwnedFd::from(file);
            let err = exchange(&fd, b"\xa1").unwrap_err();
            let Error::Ioctl(io) = err else {
                panic!("expected Ioctl, got {err:?}");
            };
            assert_eq!(io.raw_os_error(), Some(25)); // ENOTTY
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_of_a_missing_device_fails_with_open() {
        let path = Path::new("/nonexistent/plinth-test/nsm");
        let err = NsmDevice::open(path).unwrap_err();
        let Error::Open { path: p, source } = err else {
            panic!("expected Open, got {err:?}");
        };
        assert_eq!(p, path);
        assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    }
}
