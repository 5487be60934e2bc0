use super::*;

#[test]
fn audio_sources_parse() {
    assert_eq!("none".parse::<AudioSpec>().unwrap(), AudioSpec::None);
    assert_eq!(
        "default".parse::<AudioSpec>().unwrap(),
        AudioSpec::Mic(None)
    );
    assert_eq!(
        "alsa:hw:1,0".parse::<AudioSpec>().unwrap(),
        AudioSpec::Mic(Some("alsa:hw:1,0".into()))
    );
    assert_eq!("file".parse::<AudioSpec>().unwrap(), AudioSpec::File);
    assert_eq!("tone".parse::<AudioSpec>().unwrap(), AudioSpec::Tone);
    for bad in ["", "alsa:", "mic", "pulse:x"] {
        assert!(bad.parse::<AudioSpec>().is_err(), "{bad}");
    }
    assert!(AudioConfig::new(AudioSpec::Tone, Some(500)).is_err());
    assert_eq!(
        AudioConfig::new(AudioSpec::Tone, None).unwrap().bitrate,
        DEFAULT_BITRATE
    );
}

#[test]
fn packets_are_20_ms_stamped_from_their_first_sample_and_decode() {
    let mut p = Packets::new(DEFAULT_BITRATE).unwrap();
    let mut out = Vec::new();
    // 50 ms in uneven chunks, then a chunk 1 s later: a new run.
    let tone = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|i| 0.25 * (i as f32 * 0.05).sin())
            .collect::<Vec<_>>()
    };
    p.push(
        &Chunk {
            start_us: 1_000_000,
            samples: tone(700),
            new_run: false,
        },
        |a| out.push(a),
    );
    p.push(
        &Chunk {
            start_us: 1_000_000 + samples_us(700),
            samples: tone(1700),
            new_run: false,
        },
        |a| out.push(a),
    );
    p.push(
        &Chunk {
            start_us: 2_000_000,
            samples: tone(960),
            new_run: false,
        },
        |a| out.push(a),
    );
    let times: Vec<u64> = out.iter().map(|a| a.capture_us).collect();
    assert_eq!(times, [1_000_000, 1_020_000, 2_000_000]);
    let mut decoder = opus::Decoder::new(AUDIO_RATE, opus::Channels::Mono).unwrap();
    for a in &out {
        cctv_protocol::validate_audio(a).unwrap();
        // -12 dB peak: 0.25 of full scale.
        assert!((11..=13).contains(&a.peak_db), "{}", a.peak_db);
        let mut pcm = vec![0f32; 960];
        assert_eq!(decoder.decode_float(&a.opus, &mut pcm, false).unwrap(), 960);
    }
}

#[test]
fn resampling_keeps_time_across_chunks() {
    let mut r = Resampler::new(44_100);
    let input: Vec<f32> = (0..44_100).map(|i| (i % 100) as f32 / 100.0).collect();
    let out: usize = input.chunks(1024).map(|c| r.run(c).len()).sum();
    assert!((47_990..=48_010).contains(&out), "{out}");
    assert_eq!(Resampler::new(48_000).run(&[0.5; 10]), vec![0.5; 10]);
}

#[test]
fn the_tone_beeps_for_the_first_100_ms_of_each_second() {
    assert!(peak_db(&tone::samples(5_000_000)) <= 7);
    assert!(peak_db(&tone::samples(5_080_000)) <= 7);
    assert_eq!(peak_db(&tone::samples(5_100_000)), SILENT_DB);
    assert_eq!(peak_db(&tone::samples(5_500_000)), SILENT_DB);
    assert_eq!(peak_db(&[1.0]), 0);
    assert_eq!(peak_db(&[0.0; 4]), SILENT_DB);
}
