//! Thumbnails (`?thumb=WxH`, `WxHt`, `WxHb`, `WxHf`, `0xH`, `Wx0`) for png, jpg, gif and webp.

use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat};

/// A parsed thumb size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thumb {
    pub width: u32,
    pub height: u32,
    pub mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Center,
    Top,
    Bottom,
    Fit,
}

/// Largest thumbnail side accepted.
const MAX_SIDE: u32 = 4000;

impl Thumb {
    pub fn parse(s: &str) -> Option<Thumb> {
        let (dims, mode) = match s.chars().last()? {
            't' => (&s[..s.len() - 1], Mode::Top),
            'b' => (&s[..s.len() - 1], Mode::Bottom),
            'f' => (&s[..s.len() - 1], Mode::Fit),
            _ => (s, Mode::Center),
        };
        let (w, h) = dims.split_once('x')?;
        let (width, height) = (w.parse::<u32>().ok()?, h.parse::<u32>().ok()?);
        if (width == 0 && height == 0) || width > MAX_SIDE || height > MAX_SIDE {
            return None;
        }
        if (width == 0 || height == 0) && mode != Mode::Center {
            return None;
        }
        Some(Thumb {
            width,
            height,
            mode,
        })
    }
}

/// The image format of a file name, if thumbnails are made for it.
pub fn format_of(name: &str) -> Option<ImageFormat> {
    let ext = name.rsplit('.').next()?.to_ascii_lowercase();
    match ext.as_str() {
        "png" => Some(ImageFormat::Png),
        "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
        "gif" => Some(ImageFormat::Gif),
        "webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

fn resize(img: &DynamicImage, t: Thumb) -> DynamicImage {
    let (w, h) = (img.width().max(1), img.height().max(1));
    match (t.width, t.height, t.mode) {
        (0, th, _) => img.resize(u32::MAX, th, FilterType::Lanczos3),
        (tw, 0, _) => img.resize(tw, u32::MAX, FilterType::Lanczos3),
        (tw, th, Mode::Fit) => img.resize(tw, th, FilterType::Lanczos3),
        (tw, th, mode) => {
            // Cover the box, then crop at the center, top or bottom.
            let scale = f64::max(f64::from(tw) / f64::from(w), f64::from(th) / f64::from(h));
            let (sw, sh) = (
                ((f64::from(w) * scale).round() as u32).max(tw),
                ((f64::from(h) * scale).round() as u32).max(th),
            );
            let scaled = img.resize_exact(sw, sh, FilterType::Lanczos3);
            let x = (sw - tw) / 2;
            let y = match mode {
                Mode::Top => 0,
                Mode::Bottom => sh - th,
                _ => (sh - th) / 2,
            };
            scaled.crop_imm(x, y, tw, th)
        }
    }
}

/// Makes a thumbnail of `data` (an image of `format`).
pub fn make(data: &[u8], format: ImageFormat, t: Thumb) -> Result<Vec<u8>, image::ImageError> {
    let img = image::load_from_memory_with_format(data, format)?;
    let out = resize(&img, t);
    let mut buf = std::io::Cursor::new(Vec::new());
    out.write_to(&mut buf, format)?;
    Ok(buf.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = DynamicImage::new_rgb8(w, h);
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, ImageFormat::Png).unwrap();
        buf.into_inner()
    }

    fn dims(data: &[u8]) -> (u32, u32) {
        let i = image::load_from_memory(data).unwrap();
        (i.width(), i.height())
    }

    #[test]
    fn sizes_and_modes() {
        let src = png(400, 200);
        let mk = |s: &str| dims(&make(&src, ImageFormat::Png, Thumb::parse(s).unwrap()).unwrap());
        assert_eq!(mk("100x100"), (100, 100));
        assert_eq!(mk("100x100t"), (100, 100));
        assert_eq!(mk("100x100b"), (100, 100));
        assert_eq!(mk("100x100f"), (100, 50));
        assert_eq!(mk("0x50"), (100, 50));
        assert_eq!(mk("200x0"), (200, 100));
        for bad in ["0x0", "axb", "100", "10x10x", "0x10f", "99999x1", ""] {
            assert!(Thumb::parse(bad).is_none(), "{bad}");
        }
    }
}
