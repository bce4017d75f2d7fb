// The others in the visit: one tile (picture and name) per remote participant, and their sound.
// The relay's layout says which transceiver (mid) shows whom. Sound plays on the speaker chosen
// in the device check.
import { useSpeaker } from "../shared/device_choice.js";

export class RemoteStage {
  constructor({ grid, waiting, audio }) {
    this.grid = grid;
    this.waiting = waiting;
    this.audio = audio;
  }

  tiles() {
    return [...this.grid.querySelectorAll("figure.remote")];
  }

  // Remote participants by id, with the mids of their audio and video.
  static participants({ layout, streams, kinds }) {
    const people = new Map();
    for (const [mid, participant] of Object.entries(layout)) {
      if (!streams.has(mid)) continue;
      const entry = people.get(participant) || {};
      entry[kinds.get(mid)] = mid;
      people.set(participant, entry);
    }
    return people;
  }

  tileFor(participant) {
    const found = this.tiles().find((tile) => tile.dataset.participant === participant);
    if (found) return found;
    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    const tile = document.createElement("figure");
    tile.className = "remote";
    tile.dataset.participant = participant;
    tile.append(video, document.createElement("figcaption"));
    this.grid.append(tile);
    return tile;
  }

  // `caption(participant)` names a tile ("Ana Souza (Interpreter)", "… (audio only)").
  render({ layout, streams, kinds }, caption) {
    const people = RemoteStage.participants({ layout, streams, kinds });
    for (const tile of this.tiles()) {
      const mids = people.get(tile.dataset.participant);
      if (!mids || !mids.video) tile.remove();
    }
    for (const [participant, mids] of people) {
      if (!mids.video) continue;
      const tile = this.tileFor(participant);
      const video = tile.querySelector("video");
      const stream = streams.get(mids.video);
      if (video.srcObject !== stream) video.srcObject = stream;
      const text = caption(participant);
      video.setAttribute("aria-label", `Video of ${text}`);
      tile.querySelector("figcaption").textContent = text;
    }
    const count = this.tiles().length;
    this.grid.dataset.count = String(count);
    this.waiting.hidden = count > 0;
    this.renderAudio([...people.values()].map((mids) => mids.audio).filter(Boolean), streams);
  }

  renderAudio(mids, streams) {
    for (const element of [...this.audio.children]) {
      if (!mids.includes(element.dataset.mid)) element.remove();
    }
    for (const mid of mids) {
      if (this.audio.querySelector(`audio[data-mid="${mid}"]`)) continue;
      const audio = document.createElement("audio");
      audio.autoplay = true;
      audio.dataset.mid = mid;
      audio.srcObject = streams.get(mid);
      useSpeaker(audio);
      this.audio.append(audio);
    }
  }
}
