//! Removes metadata from uploaded images before they are stored and served: EXIF (GPS position,
//! camera serial, time), XMP, IPTC and comments in JPEG; text, EXIF and time chunks in PNG; EXIF
//! and XMP chunks in WebP. Only the container is rewritten (with `img-parts`); the compressed
//! pixels are copied unchanged, so nothing is decoded or re-encoded. Colour information (ICC
//! profiles, the Adobe marker, PNG colour chunks) stays. A JPEG's orientation, which phones record
//! in EXIF and viewers apply, is kept as a minimal EXIF block holding only that tag.

use bytes::Bytes;
use img_parts::jpeg::{Jpeg, JpegSegment, markers};
use img_parts::png::Png;
use img_parts::riff::{RiffChunk, RiffContent};
use img_parts::webp::WebP;

use super::image::ImageKind;

/// The image could not be taken apart (malformed container).
#[derive(Debug, thiserror::Error)]
#[error("malformed image container")]
pub struct Malformed;

/// The image without its metadata.
pub fn strip(kind: ImageKind, bytes: Bytes) -> Result<Bytes, Malformed> {
    match kind {
        ImageKind::Jpeg => strip_jpeg(bytes),
        ImageKind::Png => strip_png(bytes),
        ImageKind::Webp => strip_webp(bytes),
    }
}

const EXIF_PREFIX: &[u8] = b"Exif\0\0";
const ICC_PREFIX: &[u8] = b"ICC_PROFILE\0";

fn strip_jpeg(bytes: Bytes) -> Result<Bytes, Malformed> {
    let mut jpeg = Jpeg::from_bytes(bytes).map_err(|_| Malformed)?;
    let orientation = jpeg
        .segments()
        .iter()
        .filter(|s| s.marker() == markers::APP1 && s.contents().starts_with(EXIF_PREFIX))
        .find_map(|s| orientation(&s.contents()[EXIF_PREFIX.len()..]));
    // APP0 (JFIF), ICC profiles in APP2 and Adobe's APP14 (colour transform) stay; every other
    // application segment (EXIF/XMP in APP1, IPTC in APP13, …) and comments go.
    jpeg.segments_mut().retain(|s| match s.marker() {
        markers::APP0 | markers::APP14 => true,
        markers::APP2 => s.contents().starts_with(ICC_PREFIX),
        m if (markers::APP1..=markers::APP15).contains(&m) => false,
        markers::COM => false,
        _ => true,
    });
    if let Some(o) = orientation.filter(|o| (2..=8).contains(o)) {
        let mut contents = EXIF_PREFIX.to_vec();
        contents.extend_from_slice(&orientation_only_tiff(o));
        // After SOI's APP0, if there is one: where EXIF is expected.
        let at = usize::from(
            jpeg.segments()
                .first()
                .is_some_and(|s| s.marker() == markers::APP0),
        );
        jpeg.segments_mut().insert(
            at,
            JpegSegment::new_with_contents(markers::APP1, Bytes::from(contents)),
        );
    }
    Ok(jpeg.encoder().bytes())
}

/// The orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF payload, if readable.
fn orientation(tiff: &[u8]) -> Option<u16> {
    let le = match tiff.get(0..4)? {
        [b'I', b'I', 42, 0] => true,
        [b'M', b'M', 0, 42] => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at + 2)?.try_into().ok()?;
        Some(if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    (0..count.min(512)).find_map(|i| {
        let entry = ifd.checked_add(2 + 12 * i)?;
        (u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3).then(|| u16_at(entry + 8))?
    })
}

/// A little-endian TIFF header with one IFD holding only the orientation.
fn orientation_only_tiff(o: u16) -> Vec<u8> {
    let mut t = Vec::with_capacity(26);
    t.extend_from_slice(b"II");
    t.extend_from_slice(&42u16.to_le_bytes());
    t.extend_from_slice(&8u32.to_le_bytes()); // IFD0 right after the header
    t.extend_from_slice(&1u16.to_le_bytes()); // one entry
    t.extend_from_slice(&0x0112u16.to_le_bytes());
    t.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_le_bytes()); // one value
    t.extend_from_slice(&o.to_le_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    t
}

/// PNG chunks that carry metadata rather than pixels or colour.
const PNG_METADATA: [[u8; 4]; 6] = [*b"tEXt", *b"zTXt", *b"iTXt", *b"eXIf", *b"tIME", *b"dSIG"];

fn strip_png(bytes: Bytes) -> Result<Bytes, Malformed> {
    let mut png = Png::from_bytes(bytes).map_err(|_| Malformed)?;
    png.chunks_mut()
        .retain(|c| !PNG_METADATA.contains(&c.kind()));
    Ok(png.encoder().bytes())
}

/// VP8X flag bits of the EXIF and XMP chunks.
const VP8X_EXIF: u8 = 0x08;
const VP8X_XMP: u8 = 0x04;

fn strip_webp(bytes: Bytes) -> Result<Bytes, Malformed> {
    let mut webp = WebP::from_bytes(bytes).map_err(|_| Malformed)?;
    webp.remove_chunks_by_id(*b"EXIF");
    webp.remove_chunks_by_id(*b"XMP ");
    // The extended header announces which chunks follow: clear the two that are gone.
    for chunk in webp.chunks_mut() {
        if chunk.id() != *b"VP8X" {
            continue;
        }
        let Some(data) = chunk.content().data() else {
            return Err(Malformed);
        };
        let mut flags = data.to_vec();
        match flags.first_mut() {
            Some(f) => *f &= !(VP8X_EXIF | VP8X_XMP),
            None => return Err(Malformed),
        }
        *chunk = RiffChunk::new(*b"VP8X", RiffContent::Data(Bytes::from(flags)));
    }
    Ok(webp.encoder().bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal JPEG: SOI, APP0, an EXIF APP1 (orientation 6 and a GPS tag), a COM, a DQT-ish
    /// segment, SOS with entropy data, EOI.
    pub fn jpeg_with_exif(gps: &[u8]) -> Vec<u8> {
        let mut tiff = Vec::new();
        tiff.extend_from_slice(b"MM\0*");
        tiff.extend_from_slice(&8u32.to_be_bytes());
        tiff.extend_from_slice(&2u16.to_be_bytes());
        tiff.extend_from_slice(&0x0112u16.to_be_bytes());
        tiff.extend_from_slice(&3u16.to_be_bytes());
        tiff.extend_from_slice(&1u32.to_be_bytes());
        tiff.extend_from_slice(&6u16.to_be_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0x8825u16.to_be_bytes()); // GPSInfo IFD pointer
        tiff.extend_from_slice(&4u16.to_be_bytes());
        tiff.extend_from_slice(&1u32.to_be_bytes());
        tiff.extend_from_slice(&38u32.to_be_bytes());
        tiff.extend_from_slice(&0u32.to_be_bytes());
        tiff.extend_from_slice(gps);
        let seg = |marker: u8, body: &[u8]| {
            let mut v = vec![0xFF, marker];
            v.extend_from_slice(&u16::try_from(body.len() + 2).unwrap_or(0).to_be_bytes());
            v.extend_from_slice(body);
            v
        };
        let mut out = vec![0xFF, 0xD8];
        out.extend(seg(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
        let mut app1 = EXIF_PREFIX.to_vec();
        app1.extend_from_slice(&tiff);
        out.extend(seg(0xE1, &app1));
        out.extend(seg(0xFE, b"shot on a secret phone"));
        out.extend(seg(0xDB, &[0u8; 65]));
        out.extend(seg(0xDA, &[1, 1, 0, 0, 0x3F, 0]));
        out.extend_from_slice(&[0x12, 0x34, 0x56, 0x78]);
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    #[test]
    fn a_jpegs_exif_gps_and_comment_go_and_only_its_orientation_stays() {
        let gps = b"GPS-LATITUDE-6.2088S-LONGITUDE-106.8456E";
        let input = jpeg_with_exif(gps);
        let out = strip(ImageKind::Jpeg, Bytes::from(input.clone())).expect("strip");
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(find(&input, gps) && !find(&out, gps), "GPS block removed");
        assert!(!find(&out, b"secret phone"), "comment removed");
        assert!(find(&out, &[0x12, 0x34, 0x56, 0x78]), "scan data kept");
        let jpeg = Jpeg::from_bytes(out).expect("still a JPEG");
        let exif: Vec<_> = jpeg
            .segments()
            .iter()
            .filter(|s| s.marker() == markers::APP1)
            .collect();
        assert_eq!(exif.len(), 1);
        assert_eq!(
            orientation(&exif[0].contents()[EXIF_PREFIX.len()..]),
            Some(6)
        );
    }

    #[test]
    fn png_text_and_exif_chunks_go_pixels_and_colour_stay() {
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        let chunk = |kind: &[u8; 4], body: &[u8]| {
            let mut v = u32::try_from(body.len())
                .unwrap_or(0)
                .to_be_bytes()
                .to_vec();
            v.extend_from_slice(kind);
            v.extend_from_slice(body);
            let mut h = crc32fast::Hasher::new();
            h.update(kind);
            h.update(body);
            v.extend_from_slice(&h.finalize().to_be_bytes());
            v
        };
        png.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]));
        png.extend(chunk(b"sRGB", &[0]));
        png.extend(chunk(b"tEXt", b"GPS\0-6.2088,106.8456"));
        png.extend(chunk(b"eXIf", b"MM\0*secret"));
        png.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 2, 0, 1]));
        png.extend(chunk(b"IEND", &[]));
        let out = strip(ImageKind::Png, Bytes::from(png)).expect("strip");
        let parsed = Png::from_bytes(out).expect("still a PNG");
        let kinds: Vec<[u8; 4]> = parsed.chunks().iter().map(|c| c.kind()).collect();
        assert_eq!(kinds, vec![*b"IHDR", *b"sRGB", *b"IDAT", *b"IEND"]);
    }

    #[test]
    fn webp_exif_and_xmp_chunks_go_and_the_header_says_so() {
        let chunk = |id: &[u8; 4], body: &[u8]| {
            let mut v = id.to_vec();
            v.extend_from_slice(&u32::try_from(body.len()).unwrap_or(0).to_le_bytes());
            v.extend_from_slice(body);
            if body.len() % 2 == 1 {
                v.push(0);
            }
            v
        };
        let mut body = b"WEBP".to_vec();
        body.extend(chunk(b"VP8X", &[0x08 | 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        body.extend(chunk(b"VP8L", &[0x2f, 0, 0, 0, 0]));
        body.extend(chunk(b"EXIF", b"MM\0*GPS-secret"));
        body.extend(chunk(b"XMP ", b"<x:xmpmeta>secret</x:xmpmeta>"));
        let mut webp = b"RIFF".to_vec();
        webp.extend_from_slice(&u32::try_from(body.len()).unwrap_or(0).to_le_bytes());
        webp.extend(body);
        let out = strip(ImageKind::Webp, Bytes::from(webp)).expect("strip");
        assert!(!out.windows(6).any(|w| w == b"secret"));
        let parsed = WebP::from_bytes(out).expect("still a WebP");
        let ids: Vec<[u8; 4]> = parsed.chunks().iter().map(RiffChunk::id).collect();
        assert_eq!(ids, vec![*b"VP8X", *b"VP8L"]);
        let flags = parsed.chunks()[0].content().data().expect("data")[0];
        assert_eq!(flags & (VP8X_EXIF | VP8X_XMP), 0);
    }

    #[test]
    fn garbage_after_a_valid_signature_is_refused_or_stripped_never_a_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let base = jpeg_with_exif(b"gps");
        for _ in 0..2_000 {
            let mut b = base.clone();
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(2..b.len());
                b[i] = rng.random();
            }
            b.truncate(rng.random_range(4..=b.len()));
            let _ = strip(ImageKind::Jpeg, Bytes::from(b.clone()));
            let mut w = b"RIFF\x20\0\0\0WEBPVP8X".to_vec();
            w.extend_from_slice(&b);
            let _ = strip(ImageKind::Webp, Bytes::from(w));
            let mut p = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
            p.extend_from_slice(&b);
            let _ = strip(ImageKind::Png, Bytes::from(p));
        }
    }
}
