//! The demo site's data: worlds, guilds, players, and how they advance.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as ChronoDuration, FixedOffset, NaiveDate, Timelike, Utc};

/// Most members a guild grows to.
const MAX_MEMBERS: usize = 60;

/// A generated dataset's size (benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// Worlds.
    pub worlds: usize,
    /// Guilds per world.
    pub guilds_per_world: usize,
    /// Players per guild.
    pub players_per_guild: usize,
}

/// One player of a world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Vocation.
    pub vocation: String,
    /// Level.
    pub level: u32,
    /// Experience gained today (the ranking's number and the player page's
    /// "Raw XP no dia").
    pub experience: i64,
    /// Minutes online today (the player page's "Online time").
    pub online_minutes: i64,
    /// Earlier days, newest first (the player page's older rows).
    pub history: Vec<Day>,
}

/// One earlier day of a player, as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    /// The day.
    pub date: NaiveDate,
    /// Level at the end of the day.
    pub level: u32,
    /// Raw experience of the day.
    pub raw_xp: i64,
    /// Minutes online that day.
    pub online_minutes: i64,
}

impl Member {
    /// A player with two earlier days of history (derived from its numbers,
    /// so every run of the demo shows the same pages).
    pub fn new(vocation: &str, level: u32, experience: i64, today: NaiveDate) -> Member {
        let seed = experience / 100_000 + i64::from(level);
        let history = (1..=2)
            .map(|k: i64| Day {
                date: today - ChronoDuration::days(k),
                level: level.saturating_sub(k as u32),
                raw_xp: experience / (k + 1) + seed * 1_000,
                online_minutes: (seed * 7 * k) % 400 + 30,
            })
            .collect();
        Member {
            vocation: vocation.to_string(),
            level,
            experience,
            online_minutes: (seed * 13) % 300,
            history,
        }
    }
}

/// One guild.
#[derive(Debug, Clone)]
pub struct Guild {
    /// Name.
    pub name: String,
    /// Member names (a name may be in two guilds of a world).
    pub members: Vec<String>,
    /// Rows per page when paginated.
    pub page_size: Option<usize>,
}

/// One world.
#[derive(Debug, Clone)]
pub struct World {
    /// Name.
    pub name: String,
    /// The `Daily Raw Ranking` time.
    pub update_time: DateTime<FixedOffset>,
    /// Guilds the site knows.
    pub guilds: Vec<Guild>,
    /// Guild names the config lists but the site does not know.
    pub unknown_guilds: Vec<String>,
    /// Players by name.
    pub players: BTreeMap<String, Member>,
    /// Updates of this world so far.
    pub advances: u64,
    /// The site's current day (the player pages' newest row).
    pub day: NaiveDate,
    /// Players a demo config watches (two per world in the realistic
    /// dataset: a guild member and a player of no guild).
    pub watch: Vec<String>,
    /// The world's makers (realistic dataset): players of this world tied
    /// to a main character, listed by [`crate::demo_site::DemoSite::main_makers_csv`].
    pub makers: Vec<MakerOf>,
}

/// A maker of a world and its main character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MakerOf {
    /// The maker (a player of its world).
    pub name: String,
    /// Its main character.
    pub main: String,
    /// The main character's world.
    pub main_world: String,
}

/// All worlds.
#[derive(Debug, Clone)]
pub struct Data {
    /// Worlds, in order.
    pub worlds: Vec<World>,
    /// The site's offset.
    pub offset: FixedOffset,
}

const VOCATIONS: [&str; 4] = [
    "Elite Knight",
    "Royal Paladin",
    "Master Sorcerer",
    "Elder Druid",
];

fn minute(t: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

impl Data {
    /// The hand-made dataset: three worlds, accents, a player in two guilds,
    /// a paginated guild, an unknown guild.
    pub fn realistic(now: DateTime<Utc>, offset: FixedOffset) -> Data {
        let t = minute(now.with_timezone(&offset));
        let today = t.date_naive();
        let m = |voc: &str, level: u32, xp: i64| Member::new(voc, level, xp, today);
        let mut aurera = BTreeMap::new();
        for (name, voc, level, xp) in [
            ("Zé Pequeno", "Elite Knight", 512, 74_287_224),
            ("Lady Ávila", "Royal Paladin", 430, 51_002_310),
            ("Mago Cinzento", "Master Sorcerer", 388, 33_120_005),
            ("Druida da Mata", "Elder Druid", 275, 12_000_000),
            ("Bob", "Knight", 8, 0),
            ("Kaio Ómega", "Royal Paladin", 301, 8_450_120),
            ("Tânia Luz", "Elder Druid", 290, 7_001_001),
            ("Rei Arthur", "Elite Knight", 600, 90_100_000),
            ("Pedro Pé", "Master Sorcerer", 120, 1_200_300),
            ("Ana Clara", "Royal Paladin", 150, 2_500_000),
            ("Vó Maria", "Elder Druid", 95, 450_000),
            ("Çelo", "Elite Knight", 210, 5_000_000),
            ("Ênio", "Master Sorcerer", 199, 4_100_000),
            // In no guild: only their player pages show them.
            ("Solitário Sem Guilda", "Elder Druid", 340, 15_500_000),
            ("Andarilha", "Royal Paladin", 260, 6_000_000),
        ] {
            aurera.insert(name.to_string(), m(voc, level, xp));
        }
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let makers = |list: &[(&str, &str, &str)]| {
            list.iter()
                .map(|(name, main, main_world)| MakerOf {
                    name: name.to_string(),
                    main: main.to_string(),
                    main_world: main_world.to_string(),
                })
                .collect::<Vec<_>>()
        };
        let mut bellum = BTreeMap::new();
        for (name, voc, level, xp) in [
            ("Imortal Um", "Elite Knight", 700, 120_000_000),
            ("Sombra Négra", "Master Sorcerer", 650, 99_000_000),
            ("Flecha Veloz", "Royal Paladin", 500, 60_000_000),
            ("Cura Tudo", "Elder Druid", 480, 45_000_000),
            ("Noob Total", "Knight", 20, 10_000),
            ("Lâmina Fria", "Elite Knight", 333, 20_000_000),
            ("Gume", "Royal Paladin", 222, 9_999_999),
            ("Errante Bellum", "Master Sorcerer", 410, 33_000_000),
        ] {
            bellum.insert(name.to_string(), m(voc, level, xp));
        }
        let mut celesta = BTreeMap::new();
        for (name, voc, level, xp) in [
            ("Dragão Azul", "Elite Knight", 410, 40_000_000),
            ("joão da silva", "Royal Paladin", 350, 30_500_000),
            ("Ñandú Ärger", "Master Sorcerer", 300, 25_000_000),
            ("Éter Vivo", "Elder Druid", 290, 24_000_000),
            ("Chama Ígnea", "Master Sorcerer", 180, 3_000_000),
            ("Ölaf", "Elite Knight", 100, 700_000),
            ("Viajante Ñ", "Elite Knight", 150, 2_000_000),
        ] {
            celesta.insert(name.to_string(), m(voc, level, xp));
        }
        Data {
            offset,
            worlds: vec![
                World {
                    name: "Aurera".into(),
                    update_time: t - ChronoDuration::minutes(3),
                    guilds: vec![
                        Guild {
                            name: "Red Rose".into(),
                            members: names(&[
                                "Zé Pequeno",
                                "Lady Ávila",
                                "Mago Cinzento",
                                "Druida da Mata",
                                "Bob",
                            ]),
                            page_size: None,
                        },
                        Guild {
                            name: "Nova Ordem".into(),
                            members: names(&[
                                "Kaio Ómega",
                                "Tânia Luz",
                                "Zé Pequeno",
                                "Rei Arthur",
                                "Pedro Pé",
                                "Ana Clara",
                                "Vó Maria",
                                "Çelo",
                                "Ênio",
                            ]),
                            page_size: Some(4),
                        },
                    ],
                    unknown_guilds: Vec::new(),
                    players: aurera,
                    advances: 0,
                    day: today,
                    watch: names(&["Zé Pequeno", "Solitário Sem Guilda"]),
                    makers: makers(&[
                        ("Vó Maria", "Rei Arthur", "Aurera"),
                        ("Pedro Pé", "Rei Arthur", "Aurera"),
                    ]),
                },
                World {
                    name: "Bellum".into(),
                    update_time: t - ChronoDuration::minutes(7),
                    guilds: vec![
                        Guild {
                            name: "Os Imortais".into(),
                            members: names(&[
                                "Imortal Um",
                                "Sombra Négra",
                                "Flecha Veloz",
                                "Cura Tudo",
                                "Noob Total",
                            ]),
                            page_size: None,
                        },
                        Guild {
                            name: "Lâmina Sombria".into(),
                            members: names(&["Lâmina Fria", "Gume"]),
                            page_size: None,
                        },
                    ],
                    unknown_guilds: Vec::new(),
                    players: bellum,
                    advances: 0,
                    day: today,
                    watch: names(&["Imortal Um", "Errante Bellum"]),
                    makers: makers(&[("Gume", "Imortal Um", "Bellum")]),
                },
                World {
                    name: "Cèlesta".into(),
                    update_time: t - ChronoDuration::minutes(12),
                    guilds: vec![Guild {
                        name: "Dragões de Éter".into(),
                        members: names(&[
                            "Dragão Azul",
                            "joão da silva",
                            "Ñandú Ärger",
                            "Éter Vivo",
                            "Chama Ígnea",
                            "Ölaf",
                        ]),
                        page_size: None,
                    }],
                    unknown_guilds: vec!["Unknown Guild".into()],
                    players: celesta,
                    advances: 0,
                    day: today,
                    watch: names(&["Dragão Azul", "Viajante Ñ"]),
                    makers: makers(&[("Ölaf", "Zé Pequeno", "Aurera")]),
                },
            ],
        }
    }

    /// A generated dataset of a given size.
    pub fn sized(size: Sizing, now: DateTime<Utc>, offset: FixedOffset) -> Data {
        let t = minute(now.with_timezone(&offset));
        let worlds = (0..size.worlds)
            .map(|w| {
                let mut players = BTreeMap::new();
                let guilds = (0..size.guilds_per_world)
                    .map(|g| {
                        let members = (0..size.players_per_guild)
                            .map(|p| {
                                let name = format!("Player {:02}-{:02}-{:03}", w + 1, g + 1, p + 1);
                                players.insert(
                                    name.clone(),
                                    Member::new(
                                        VOCATIONS[p % 4],
                                        100 + (p as u32 * 7) % 500,
                                        1_000_000 + (p as i64) * 12_345,
                                        t.date_naive(),
                                    ),
                                );
                                name
                            })
                            .collect();
                        Guild {
                            name: format!("Guild {:02}-{:02}", w + 1, g + 1),
                            members,
                            page_size: None,
                        }
                    })
                    .collect();
                World {
                    name: format!("World {:02}", w + 1),
                    update_time: t - ChronoDuration::minutes(w as i64 % 10),
                    guilds,
                    unknown_guilds: Vec::new(),
                    players,
                    advances: 0,
                    day: t.date_naive(),
                    watch: Vec::new(),
                    makers: Vec::new(),
                }
            })
            .collect();
        Data { offset, worlds }
    }

    /// Find a world (case-insensitive).
    pub fn world(&self, name: &str) -> Option<&World> {
        let want = name.trim().to_lowercase();
        self.worlds.iter().find(|w| w.name.to_lowercase() == want)
    }

    fn world_mut(&mut self, name: &str) -> Option<&mut World> {
        let want = name.trim().to_lowercase();
        self.worlds
            .iter_mut()
            .find(|w| w.name.to_lowercase() == want)
    }

    /// One site update of one world: a new `Daily Raw Ranking` time (at
    /// least a minute later, at least `now`); about a third of the players
    /// gain experience and 10 minutes online, another third only 5 minutes
    /// online, the rest nothing (each player goes through the three in
    /// turn); every third update a new player joins the first guild.
    /// Returns whether the world exists.
    pub fn advance_world(&mut self, name: &str, now: DateTime<Utc>) -> bool {
        let offset = self.offset;
        let Some(world) = self.world_mut(name) else {
            return false;
        };
        world.advances += 1;
        let n = world.advances;
        let now_min = minute(now.with_timezone(&offset));
        world.update_time = now_min.max(world.update_time + ChronoDuration::minutes(1));
        for (name, member) in world.players.iter_mut() {
            // A phase of its own per player (not its position: players
            // joining must not shift the others' turns).
            let seed: u64 = name.bytes().map(u64::from).sum();
            match (seed + n) % 3 {
                0 => {
                    member.experience += 1_000 * (seed % 50 + 1) as i64 + (n as i64) * 137;
                    member.online_minutes += 10;
                }
                1 => member.online_minutes += 5,
                _ => {}
            }
        }
        if n % 3 == 1 {
            let wname = world.name.clone();
            if let Some(guild) = world.guilds.first_mut()
                && guild.members.len() < MAX_MEMBERS
            {
                let name = format!("Novato {} de {}", n, wname);
                let mut novice =
                    Member::new(VOCATIONS[(n % 4) as usize], 8, 5_000 + n as i64, world.day);
                novice.history.clear();
                novice.online_minutes = 0;
                world.players.insert(name.clone(), novice);
                guild.members.push(name);
            }
        }
        true
    }

    /// The daily reset: every counter back to zero, and a new day on the
    /// player pages (today's numbers become the newest earlier day).
    pub fn reset(&mut self) {
        for w in &mut self.worlds {
            for m in w.players.values_mut() {
                m.history.insert(
                    0,
                    Day {
                        date: w.day,
                        level: m.level,
                        raw_xp: m.experience,
                        online_minutes: m.online_minutes,
                    },
                );
                m.history.truncate(7);
                m.experience = 0;
                m.online_minutes = 0;
            }
            w.day += ChronoDuration::days(1);
        }
    }

    /// A player by name in any world (case-insensitive), with its world.
    pub fn player(&self, name: &str) -> Option<(&World, &Member)> {
        let want = name.trim().to_lowercase();
        self.worlds.iter().find_map(|w| {
            w.players
                .iter()
                .find(|(n, _)| n.to_lowercase() == want)
                .map(|(_, m)| (w, m))
        })
    }
}
