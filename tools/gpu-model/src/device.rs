//! The GPU as a PCI function: configuration space, BAR0 registers and the two apertures,
//! addressed by vfio region index, with fault state, counters and access logging.
//!
//! Transport-independent: the vfio-user glue in [`crate::server`] and the tests drive it
//! the same way.

use crate::bar0::Bar0;
use crate::config_space::{self, Bar, BarKind, ConfigSpace, Identity};
use crate::profile::{Profile, BAR0_SIZE, BAR3_SIZE, NVIDIA_VENDOR_ID};
use crate::vram::Aperture;
use std::fmt;
use std::fs::File;
use std::io;
use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_PCI_BAR0_REGION_INDEX,
    VFIO_PCI_BAR1_REGION_INDEX, VFIO_PCI_BAR3_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX,
    VFIO_PCI_NUM_IRQS,
};

/// vfio region index of BAR0 (registers).
pub const REGION_BAR0: u32 = VFIO_PCI_BAR0_REGION_INDEX;
/// vfio region index of BAR1 (VRAM aperture).
pub const REGION_BAR1: u32 = VFIO_PCI_BAR1_REGION_INDEX;
/// vfio region index of BAR3 (instance memory aperture).
pub const REGION_BAR3: u32 = VFIO_PCI_BAR3_REGION_INDEX;
/// vfio region index of the configuration space.
pub const REGION_CONFIG: u32 = VFIO_PCI_CONFIG_REGION_INDEX;

/// Counters of what the device saw since the model started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Client connections that ended (a QEMU instance or a re-plug each count one).
    pub sessions: u64,
    /// Configuration space reads.
    pub config_reads: u64,
    /// Configuration space writes.
    pub config_writes: u64,
    /// BAR0 reads.
    pub bar0_reads: u64,
    /// BAR0 writes.
    pub bar0_writes: u64,
    /// BAR1/BAR3 accesses that came over the socket instead of through the mapping.
    pub aperture_accesses: u64,
    /// Accesses answered with all-ones or dropped because the device had fallen off the bus.
    pub while_off_bus: u64,
    /// Accesses refused (no such region, out of range).
    pub refused: u64,
    /// Device resets.
    pub resets: u64,
    /// DMA_MAP requests.
    pub dma_maps: u64,
    /// DMA_UNMAP requests.
    pub dma_unmaps: u64,
    /// SET_IRQS requests.
    pub set_irqs: u64,
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sessions={} config_reads={} config_writes={} bar0_reads={} bar0_writes={} \
             aperture_accesses={} while_off_bus={} refused={} resets={} dma_maps={} \
             dma_unmaps={} set_irqs={}",
            self.sessions,
            self.config_reads,
            self.config_writes,
            self.bar0_reads,
            self.bar0_writes,
            self.aperture_accesses,
            self.while_off_bus,
            self.refused,
            self.resets,
            self.dma_maps,
            self.dma_unmaps,
            self.set_irqs
        )
    }
}

/// Why an access was refused.
#[derive(Debug)]
pub enum AccessError {
    /// The region index is not one the device has.
    NoSuchRegion(u32),
    /// The access does not fit in the region.
    OutOfRange {
        /// Region index.
        region: u32,
        /// Offset of the access.
        offset: u64,
        /// Length of the access.
        len: usize,
    },
    /// The aperture file failed.
    Io(io::Error),
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessError::NoSuchRegion(r) => write!(f, "no region {r}"),
            AccessError::OutOfRange {
                region,
                offset,
                len,
            } => {
                write!(
                    f,
                    "access at {offset:#x} of {len} bytes is outside region {region}"
                )
            }
            AccessError::Io(e) => write!(f, "aperture I/O failed: {e}"),
        }
    }
}

impl std::error::Error for AccessError {}

impl From<AccessError> for io::Error {
    fn from(e: AccessError) -> Self {
        let kind = match &e {
            AccessError::Io(io) => io.kind(),
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e.to_string())
    }
}

/// One emulated GPU.
pub struct GpuDevice {
    profile: &'static Profile,
    config: ConfigSpace,
    bar0: Bar0,
    bar1: Aperture,
    bar3: Aperture,
    fallen_off: bool,
    log_budget: u64,
    irqs: Vec<Vec<File>>,
    counters: Counters,
}

impl fmt::Debug for GpuDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuDevice")
            .field("profile", &self.profile.name)
            .field("bar1_size", &self.bar1.size())
            .field("fallen_off", &self.fallen_off)
            .finish_non_exhaustive()
    }
}

/// The PCI identity presented for a profile. The subsystem is NVIDIA with the device ID as
/// subsystem ID (the model's convention, not a specific board partner's value).
pub fn identity(profile: &Profile) -> Identity {
    Identity {
        vendor_id: NVIDIA_VENDOR_ID,
        device_id: profile.device_id,
        revision_id: profile.revision_id(),
        class_code: profile.class_code,
        subsystem_vendor_id: NVIDIA_VENDOR_ID,
        subsystem_id: profile.device_id,
    }
}

/// The BAR layout of every profile: BAR0 16 MiB 32-bit registers, BAR1 64-bit prefetchable
/// VRAM aperture of `bar1_size`, BAR3 64-bit prefetchable 32 MiB.
pub fn bars(bar1_size: u64) -> [Bar; 3] {
    [
        Bar {
            index: 0,
            size: BAR0_SIZE,
            kind: BarKind::Mem32,
        },
        Bar {
            index: 1,
            size: bar1_size,
            kind: BarKind::Mem64Prefetchable,
        },
        Bar {
            index: 3,
            size: BAR3_SIZE,
            kind: BarKind::Mem64Prefetchable,
        },
    ]
}

impl GpuDevice {
    /// Powers on a GPU of `profile` with a BAR1 of `bar1_size` bytes.
    pub fn new(profile: &'static Profile, bar1_size: u64) -> io::Result<Self> {
        let config = ConfigSpace::new(&identity(profile), &bars(bar1_size))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        Ok(Self {
            profile,
            config,
            bar0: Bar0::new(profile.boot0(), profile.boot42(), !profile.dead),
            bar1: Aperture::new(&format!("gpu-model-{}-bar1", profile.name), bar1_size)?,
            bar3: Aperture::new(&format!("gpu-model-{}-bar3", profile.name), BAR3_SIZE)?,
            fallen_off: false,
            log_budget: 0,
            irqs: (0..VFIO_PCI_NUM_IRQS).map(|_| Vec::new()).collect(),
            counters: Counters::default(),
        })
    }

    /// The profile this device presents.
    pub fn profile(&self) -> &'static Profile {
        self.profile
    }

    /// The configuration space (for inspection).
    pub fn config(&self) -> &ConfigSpace {
        &self.config
    }

    /// The aperture behind BAR1.
    pub fn bar1(&self) -> &Aperture {
        &self.bar1
    }

    /// The aperture behind BAR3.
    pub fn bar3(&self) -> &Aperture {
        &self.bar3
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Logs the next `n` accesses to stderr (0 turns logging off).
    pub fn set_log_budget(&mut self, n: u64) {
        self.log_budget = n;
    }

    /// Whether the device has fallen off the bus.
    pub fn is_fallen_off(&self) -> bool {
        self.fallen_off
    }

    /// Makes the device fall off the bus: from now on every read over the socket returns
    /// all-ones (config space included) and writes are dropped, until [`Self::recover`].
    /// A reset does not bring it back. BAR1/BAR3 contents stay mapped by the client.
    pub fn fall_off_bus(&mut self) {
        self.fallen_off = true;
    }

    /// Undoes [`Self::fall_off_bus`]; the device state is what it was before.
    pub fn recover(&mut self) {
        self.fallen_off = false;
    }

    /// Counts a client connection that ended and returns the device to power-on state, as a
    /// card that is unplugged would be.
    pub fn end_session(&mut self) -> io::Result<()> {
        self.counters.sessions += 1;
        self.power_on_state()
    }

    fn power_on_state(&mut self) -> io::Result<()> {
        self.config.reset();
        self.bar0.reset();
        for fds in &mut self.irqs {
            fds.clear();
        }
        self.bar1.discard()?;
        self.bar3.discard()
    }

    /// Device reset: configuration space, registers and apertures back to power-on state
    /// (apertures read zero). Fault state is kept.
    pub fn reset(&mut self) -> io::Result<()> {
        self.counters.resets += 1;
        self.power_on_state()
    }

    /// Counts a DMA mapping request (the model does no DMA yet).
    pub fn note_dma_map(&mut self) {
        self.counters.dma_maps += 1;
    }

    /// Counts a DMA unmapping request.
    pub fn note_dma_unmap(&mut self) {
        self.counters.dma_unmaps += 1;
    }

    /// Handles SET_IRQS for interrupt `index`: with `VFIO_IRQ_SET_DATA_EVENTFD |
    /// VFIO_IRQ_SET_ACTION_TRIGGER` it records the trigger eventfds (`count == 0` disables
    /// them); other actions (mask, unmask) are accepted and change nothing, as the model
    /// raises no interrupts yet.
    pub fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        self.counters.set_irqs += 1;
        let slot = self.irqs.get_mut(index as usize).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("no irq index {index}"))
        })?;
        let trigger = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
        if flags & trigger == trigger {
            if count == 0 {
                slot.clear();
            } else {
                slot.truncate(start as usize);
                slot.extend(fds);
            }
        }
        Ok(())
    }

    /// Number of eventfds currently set for interrupt `index`.
    pub fn irq_fds(&self, index: u32) -> usize {
        self.irqs.get(index as usize).map_or(0, Vec::len)
    }

    fn log(&mut self, what: &str, region: u32, offset: u64, data: &[u8]) {
        if self.log_budget == 0 {
            return;
        }
        self.log_budget -= 1;
        let name = match region {
            REGION_BAR0 => "bar0",
            REGION_BAR1 => "bar1",
            REGION_BAR3 => "bar3",
            REGION_CONFIG => "config",
            _ => "region?",
        };
        if data.len() <= 8 {
            let mut v = [0u8; 8];
            v[..data.len()].copy_from_slice(data);
            let width = data.len() * 2;
            crate::say!(
                "gpu-model: {what} {name}+{offset:#08x} len {} = {:#0w$x}",
                data.len(),
                u64::from_le_bytes(v),
                w = width + 2
            );
        } else {
            crate::say!("gpu-model: {what} {name}+{offset:#08x} len {}", data.len());
        }
    }

    fn refuse(&mut self, e: AccessError) -> AccessError {
        self.counters.refused += 1;
        e
    }

    /// Reads `buf.len()` bytes of region `region` at `offset`.
    pub fn region_read(
        &mut self,
        region: u32,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), AccessError> {
        let oor = AccessError::OutOfRange {
            region,
            offset,
            len: buf.len(),
        };
        match region {
            REGION_CONFIG => {
                self.counters.config_reads += 1;
                self.config.read(offset, buf).map_err(|_| oor)
            }
            REGION_BAR0 => {
                self.counters.bar0_reads += 1;
                self.bar0.read(offset, buf, &self.config).map_err(|_| oor)
            }
            REGION_BAR1 => {
                self.counters.aperture_accesses += 1;
                self.bar1.read(offset, buf).map_err(|_| oor)
            }
            REGION_BAR3 => {
                self.counters.aperture_accesses += 1;
                self.bar3.read(offset, buf).map_err(|_| oor)
            }
            _ => Err(AccessError::NoSuchRegion(region)),
        }
        .map_err(|e| self.refuse(e))?;
        if self.fallen_off {
            self.counters.while_off_bus += 1;
            buf.fill(0xff);
        }
        self.log("read ", region, offset, buf);
        Ok(())
    }

    /// Writes `data` to region `region` at `offset`.
    pub fn region_write(
        &mut self,
        region: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<(), AccessError> {
        let oor = AccessError::OutOfRange {
            region,
            offset,
            len: data.len(),
        };
        let size = match region {
            REGION_CONFIG => config_space::CONFIG_SPACE_SIZE as u64,
            REGION_BAR0 => BAR0_SIZE,
            REGION_BAR1 => self.bar1.size(),
            REGION_BAR3 => self.bar3.size(),
            _ => return Err(self.refuse(AccessError::NoSuchRegion(region))),
        };
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > size)
        {
            return Err(self.refuse(oor));
        }
        self.log("write", region, offset, data);
        if self.fallen_off {
            self.counters.while_off_bus += 1;
            return Ok(());
        }
        let r = match region {
            REGION_CONFIG => {
                self.counters.config_writes += 1;
                self.config.write(offset, data).map_err(|_| oor)
            }
            REGION_BAR0 => {
                self.counters.bar0_writes += 1;
                self.bar0
                    .write(offset, data, &mut self.config)
                    .map_err(|_| oor)
            }
            REGION_BAR1 => {
                self.counters.aperture_accesses += 1;
                self.bar1.write(offset, data).map_err(AccessError::Io)
            }
            _ => {
                self.counters.aperture_accesses += 1;
                self.bar3.write(offset, data).map_err(AccessError::Io)
            }
        };
        r.map_err(|e| self.refuse(e))
    }

    /// Reads a 32-bit value from a region (all-ones if the read is refused).
    pub fn read_u32(&mut self, region: u32, offset: u64) -> u32 {
        let mut b = [0u8; 4];
        match self.region_read(region, offset, &mut b) {
            Ok(()) => u32::from_le_bytes(b),
            Err(_) => u32::MAX,
        }
    }

    /// Writes a 32-bit value to a region.
    pub fn write_u32(&mut self, region: u32, offset: u64, value: u32) -> Result<(), AccessError> {
        self.region_write(region, offset, &value.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bar0::UNWRITTEN;
    use crate::config_space::{BAR0, COMMAND};
    use crate::profile::find;

    fn dev(name: &str) -> GpuDevice {
        GpuDevice::new(find(name).unwrap(), 256 << 20).unwrap()
    }

    #[test]
    fn every_profile_reports_its_identity() {
        for p in crate::profile::PROFILES {
            let mut d = GpuDevice::new(p, 1 << 20).unwrap();
            assert_eq!(
                d.read_u32(REGION_CONFIG, 0),
                u32::from(p.device_id) << 16 | 0x10de
            );
            assert_eq!(d.read_u32(REGION_CONFIG, 8), p.class_code << 8 | 0xa1);
            let (b0, b42) = if p.dead {
                (u32::MAX, u32::MAX)
            } else {
                (p.boot0(), p.boot42())
            };
            assert_eq!(d.read_u32(REGION_BAR0, 0), b0, "{}", p.name);
            assert_eq!(d.read_u32(REGION_BAR0, 0xa00), b42, "{}", p.name);
        }
    }

    #[test]
    fn overrides_show_in_bar0_config_space_and_the_mirror() {
        use crate::bar0::NV_PCFG;
        use crate::profile::{Overrides, CLASS_3D};
        let gb202 = find("gb202").unwrap();
        let overrides = Overrides {
            boot0: Some(0x1c20_00b1),
            boot42: Some(0x1c2b_1000),
            device_id: Some(0x3001),
            class_code: Some(CLASS_3D),
        };
        let p: &'static Profile = Box::leak(Box::new(gb202.with_overrides(&overrides).unwrap()));
        let mut d = GpuDevice::new(p, 256 << 20).unwrap();
        assert_eq!(d.read_u32(REGION_BAR0, 0), 0x1c20_00b1);
        assert_eq!(d.read_u32(REGION_BAR0, 0xa00), 0x1c2b_1000);
        assert_eq!(d.read_u32(REGION_CONFIG, 0), 0x3001_10de);
        assert_eq!(
            d.read_u32(REGION_CONFIG, 8),
            0x0302_00a1,
            "class 3D, revision kept"
        );
        assert_eq!(
            d.read_u32(REGION_CONFIG, 0x2c),
            0x3001_10de,
            "subsystem follows"
        );
        assert_eq!(d.read_u32(REGION_BAR0, u64::from(NV_PCFG)), 0x3001_10de);
        assert_eq!(d.read_u32(REGION_BAR0, u64::from(NV_PCFG) + 8), 0x0302_00a1);
        // The rest of the profile is gb202's.
        let mut plain = dev("gb202");
        for off in (0x10..0x100).step_by(4).filter(|&o| o != 0x2c) {
            assert_eq!(
                d.read_u32(REGION_CONFIG, off),
                plain.read_u32(REGION_CONFIG, off),
                "config {off:#x}"
            );
        }
        assert_eq!(d.bar1().size(), 256 << 20);
        assert_eq!(d.profile().name, "gb202");
        // A reset keeps the overridden identity.
        d.reset().unwrap();
        assert_eq!(d.read_u32(REGION_BAR0, 0), 0x1c20_00b1);
        assert_eq!(d.read_u32(REGION_CONFIG, 0), 0x3001_10de);
    }

    #[test]
    fn fall_off_bus_and_recover() {
        let mut d = dev("tu102");
        d.write_u32(REGION_BAR0, 0x1000, 5).unwrap();
        d.fall_off_bus();
        assert_eq!(d.read_u32(REGION_BAR0, 0), u32::MAX);
        assert_eq!(d.read_u32(REGION_CONFIG, 0), u32::MAX);
        assert_eq!(d.read_u32(REGION_BAR1, 0), u32::MAX);
        d.write_u32(REGION_BAR0, 0x1000, 6).unwrap();
        d.reset().unwrap();
        assert!(d.is_fallen_off(), "reset does not bring a lost device back");
        assert_eq!(d.read_u32(REGION_BAR0, 0), u32::MAX);
        d.recover();
        assert_eq!(d.read_u32(REGION_BAR0, 0), 0x162000a1);
        assert_eq!(
            d.read_u32(REGION_BAR0, 0x1000),
            UNWRITTEN,
            "the reset happened"
        );
        assert_eq!(d.counters().while_off_bus, 5);
    }

    #[test]
    fn reset_restores_power_on_state_everywhere() {
        let mut d = dev("gb202");
        let cfg_before: Vec<u32> = (0..1024)
            .map(|i| d.read_u32(REGION_CONFIG, i * 4))
            .collect();
        d.write_u32(REGION_CONFIG, COMMAND as u64, 0x6).unwrap();
        d.write_u32(REGION_CONFIG, BAR0 as u64, 0xfd00_0000)
            .unwrap();
        d.write_u32(REGION_BAR0, 0x2000, 0x1234).unwrap();
        d.write_u32(REGION_BAR1, 0x100, 0x5678).unwrap();
        d.write_u32(REGION_BAR3, 0x100, 0x9abc).unwrap();
        let trigger = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
        d.set_irqs(1, trigger, 0, 1, vec![File::open("/dev/null").unwrap()])
            .unwrap();
        d.set_irqs(1, 1 | 16, 0, 1, vec![]).unwrap(); // unmask keeps the trigger fd
        assert_eq!(d.irq_fds(1), 1);
        d.reset().unwrap();
        let cfg_after: Vec<u32> = (0..1024)
            .map(|i| d.read_u32(REGION_CONFIG, i * 4))
            .collect();
        assert_eq!(cfg_before, cfg_after);
        assert_eq!(d.read_u32(REGION_BAR0, 0x2000), UNWRITTEN);
        assert_eq!(d.read_u32(REGION_BAR1, 0x100), 0);
        assert_eq!(d.read_u32(REGION_BAR3, 0x100), 0);
        assert_eq!(d.irq_fds(1), 0);
        assert_eq!(d.counters().resets, 1);
    }

    #[test]
    fn bad_accesses_are_refused_and_counted() {
        let mut d = dev("ad102");
        let mut b = [0u8; 4];
        assert!(matches!(
            d.region_read(2, 0, &mut b),
            Err(AccessError::NoSuchRegion(2))
        ));
        assert!(matches!(
            d.region_read(9, 0, &mut b),
            Err(AccessError::NoSuchRegion(9))
        ));
        assert!(d.region_read(REGION_CONFIG, 4096, &mut b).is_err());
        assert!(d.region_write(REGION_BAR0, BAR0_SIZE, &b).is_err());
        assert!(d.region_write(REGION_BAR1, u64::MAX, &b).is_err());
        assert!(d.region_write(REGION_BAR3, BAR3_SIZE - 2, &b).is_err());
        assert!(d.set_irqs(7, 0, 0, 1, vec![]).is_err());
        assert_eq!(d.counters().refused, 6);
        let e: io::Error = AccessError::NoSuchRegion(2).into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn apertures_are_reachable_over_the_socket_path_too() {
        let mut d = dev("ga102");
        d.write_u32(REGION_BAR1, (256 << 20) - 4, 0xfeed_f00d)
            .unwrap();
        assert_eq!(d.read_u32(REGION_BAR1, (256 << 20) - 4), 0xfeed_f00d);
        d.write_u32(REGION_BAR3, 0, 0x0bad_cafe).unwrap();
        assert_eq!(d.read_u32(REGION_BAR3, 0), 0x0bad_cafe);
        let mut direct = [0u8; 4];
        d.bar3().read(0, &mut direct).unwrap();
        assert_eq!(u32::from_le_bytes(direct), 0x0bad_cafe);
    }

    #[test]
    fn counters_format_as_key_values() {
        let mut d = dev("gh100");
        d.read_u32(REGION_BAR0, 0);
        d.read_u32(REGION_CONFIG, 0);
        d.end_session().unwrap();
        let s = d.counters().to_string();
        assert!(
            s.starts_with("sessions=1 config_reads=1 config_writes=0 bar0_reads=1 "),
            "{s}"
        );
    }
}
