//! The boot menu as both loaders show it: one entry per generation, newest first, titled with its number and
//! the date it was made.

/// One generation in the menu, its kernel and initrd already named by their place on the ESP.
#[derive(Debug, Clone)]
pub struct MenuEntry {
    pub number: u32,
    /// `YYYY-MM-DD` (UTC) of the generation's creation.
    pub date: String,
    /// The bootspec label (`rixos 25.11 (Linux 6.1.0-18-amd64)`).
    pub label: String,
    /// Absolute paths on the ESP (`/kernels/...`, `/EFI/rixos/...`).
    pub kernel: String,
    pub initrd: String,
    /// The kernel command line: `init=<toplevel>/init`, then the generation's parameters.
    pub options: Vec<String>,
}

impl MenuEntry {
    pub fn title(&self) -> String {
        format!("rixos - Generation {} ({})", self.number, self.date)
    }
}

/// `YYYY-MM-DD` of a Unix time, in UTC (the civil-from-days algorithm of H. Hinnant's date library).
pub fn date_of(secs: u64) -> String {
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // March is 0
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_utc() {
        for (secs, date) in [
            (0, "1970-01-01"),
            (315_532_800, "1980-01-01"),
            (951_782_400, "2000-02-29"),
            (951_868_799, "2000-02-29"),
            (951_868_800, "2000-03-01"),
            (1_798_243_200, "2026-12-26"),
            (4_107_542_400, "2100-03-01"),
        ] {
            assert_eq!(date_of(secs), date, "{secs}");
        }
    }
}
