//! Artifact formats and how a host unpacks each one.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    TarGz,
    Tar,
    TarZst,
    Zip,
    /// A single file (a static binary, a jar): placed in the release under its name.
    File,
}

impl ArchiveFormat {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "tar.gz" | "tgz" => Self::TarGz,
            "tar" => Self::Tar,
            "tar.zst" | "tzst" => Self::TarZst,
            "zip" => Self::Zip,
            "file" => Self::File,
            _ => return None,
        })
    }

    /// Guesses the format from a file name; anything unknown is a single file.
    pub fn from_name(name: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        [
            (".tar.gz", Self::TarGz),
            (".tgz", Self::TarGz),
            (".tar.zst", Self::TarZst),
            (".tzst", Self::TarZst),
            (".tar", Self::Tar),
            (".zip", Self::Zip),
        ]
        .into_iter()
        .find(|(ext, _)| lower.ends_with(ext))
        .map_or(Self::File, |(_, f)| f)
    }

    pub fn is_archive(self) -> bool {
        self != Self::File
    }

    /// The shell command that unpacks the archive `$STORED` into the
    /// existing directory `$TMP` (the single file becomes `$TMP/$FILE`),
    /// `$STRIP` leading components stripped from tar entries: every value
    /// is a variable of the script.
    pub fn extract_code(self) -> &'static str {
        // --no-same-owner: files belong to the deploying user (or `owner:`), not to the build machine's uids.
        match self {
            Self::TarGz => {
                r#"tar -xzf "$STORED" -C "$TMP" --no-same-owner --strip-components="$STRIP""#
            }
            Self::Tar => {
                r#"tar -xf "$STORED" -C "$TMP" --no-same-owner --strip-components="$STRIP""#
            }
            Self::TarZst => {
                r#"tar --zstd -xf "$STORED" -C "$TMP" --no-same-owner --strip-components="$STRIP""#
            }
            Self::Zip => r#"unzip -q -o "$STORED" -d "$TMP""#,
            Self::File => r#"install -m 0755 -- "$STORED" "$TMP/$FILE""#,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_names() {
        assert_eq!(
            ArchiveFormat::from_name("shop-1.2.tar.gz"),
            ArchiveFormat::TarGz
        );
        assert_eq!(ArchiveFormat::from_name("shop.TGZ"), ArchiveFormat::TarGz);
        assert_eq!(
            ArchiveFormat::from_name("shop.tar.zst"),
            ArchiveFormat::TarZst
        );
        assert_eq!(ArchiveFormat::from_name("shop.zip"), ArchiveFormat::Zip);
        assert_eq!(ArchiveFormat::from_name("shop"), ArchiveFormat::File);
    }
}
