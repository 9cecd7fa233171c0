//! Which decoder a stream needs, from its HTTP content type.

/// An audio codec RadioStream decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// MPEG-1/2 Layer III (`audio/mpeg`): nearly every icecast and SHOUTcast station.
    Mp3,
    /// AAC or HE-AAC in ADTS frames (`audio/aac`, `audio/aacp`).
    Aac,
    /// Vorbis in an Ogg container (`application/ogg`, `audio/ogg`).
    Vorbis,
}

impl Codec {
    /// The codec for a content type (case and parameters ignored). A missing
    /// or generic type (`""`, `application/octet-stream`) is taken as MP3, as
    /// players do for SHOUTcast servers that omit it; anything else that is
    /// not audio is `None`.
    pub fn from_content_type(content_type: &str) -> Option<Codec> {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            ""
            | "application/octet-stream"
            | "audio/mpeg"
            | "audio/mp3"
            | "audio/mpeg3"
            | "audio/x-mpeg"
            | "audio/x-mp3"
            | "audio/mpg" => Some(Codec::Mp3),
            "audio/aac" | "audio/aacp" | "audio/x-aac" | "audio/x-aacp" | "audio/adts" => Some(Codec::Aac),
            "application/ogg" | "audio/ogg" | "audio/vorbis" | "audio/x-ogg" | "audio/x-vorbis+ogg" => {
                Some(Codec::Vorbis)
            }
            _ => None,
        }
    }

    /// A short name, as reported in `started(info)["codec"]`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Mp3 => "mp3",
            Codec::Aac => "aac",
            Codec::Vorbis => "vorbis",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(Codec::from_content_type("audio/mpeg"), Some(Codec::Mp3));
        assert_eq!(Codec::from_content_type("Audio/MPEG; charset=x"), Some(Codec::Mp3));
        assert_eq!(Codec::from_content_type(""), Some(Codec::Mp3));
        assert_eq!(Codec::from_content_type("audio/aacp"), Some(Codec::Aac));
        assert_eq!(Codec::from_content_type("application/ogg"), Some(Codec::Vorbis));
        assert_eq!(Codec::from_content_type("text/html; charset=utf-8"), None);
        assert_eq!(Codec::from_content_type("audio/x-scpls"), None);
    }
}
