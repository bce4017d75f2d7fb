// What the visit page sends as video: the camera, the provider's shared screen, or nothing
// (audio only). Switching is replaceTrack on the one video sender: no renegotiation.

export class OutgoingVideo {
  constructor({ selfVideo, shareButton, say }) {
    this.selfVideo = selfVideo;
    this.shareButton = shareButton;
    this.say = say;
    this.camera = null; // the MediaStream of camera and microphone
    this.screen = null; // the shared screen's track while sharing
    this.audioOnly = false;
    this.sender = null; // the RTCRtpSender of our video to the relay
    if (shareButton) {
      shareButton.addEventListener("click", () => (this.screen ? this.stopSharing() : this.startSharing()));
    }
  }

  setCamera(stream) {
    this.camera = stream;
    if (!this.screen) this.selfVideo.srcObject = stream;
  }

  track() {
    if (this.audioOnly) return null;
    if (this.screen) return this.screen;
    return (this.camera && this.camera.getVideoTracks()[0]) || null;
  }

  async apply() {
    if (this.sender) await this.sender.replaceTrack(this.track());
  }

  async setAudioOnly(on) {
    this.audioOnly = on;
    await this.apply();
  }

  async startSharing() {
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (error) {
      this.say("Screen sharing did not start. You can try again, or keep showing your camera.");
      return;
    }
    this.screen = stream.getVideoTracks()[0];
    // The browser's own "Stop sharing" bar ends the track: go back to the camera then too.
    this.screen.addEventListener("ended", () => this.stopSharing());
    this.selfVideo.srcObject = stream;
    this.shareButton.setAttribute("aria-pressed", "true");
    this.shareButton.textContent = "Stop sharing";
    await this.apply();
  }

  async stopSharing() {
    if (!this.screen) return;
    const track = this.screen;
    this.screen = null;
    track.stop();
    this.selfVideo.srcObject = this.camera;
    this.shareButton.setAttribute("aria-pressed", "false");
    this.shareButton.textContent = "Share screen";
    await this.apply();
  }

  stop() {
    if (this.screen) this.screen.stop();
    this.screen = null;
    this.sender = null;
    this.selfVideo.srcObject = null;
  }
}
