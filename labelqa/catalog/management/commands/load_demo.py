import secrets
import shutil
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from PIL import Image, ImageEnhance, ImageOps

from labelqa import roles
from labelqa.catalog.models import Dataset

DEMO_PHOTOS = Path(__file__).resolve().parents[2] / "demo" / "images"
DEMO_USERS = {"reviewer": roles.REVIEWER, "admin": roles.ADMIN, "scientist": roles.SCIENTIST}


def _variants(photo: Image.Image) -> dict[str, Image.Image]:
    """Return a few views of one photo (crops, mirror, tint) so that each label fills a batch of several."""
    w, h = photo.size
    return {
        "full": photo,
        "mirror": ImageOps.mirror(photo),
        "centre": photo.crop((w // 8, h // 8, w - w // 8, h - h // 8)),
        "left": photo.crop((0, 0, w * 3 // 4, h)),
        "right": photo.crop((w // 4, 0, w, h)),
        "warm": ImageEnhance.Color(photo).enhance(1.6),
        "grey": ImageOps.grayscale(photo).convert("RGB"),
        "dark": ImageEnhance.Brightness(photo).enhance(0.6),
    }


class Command(BaseCommand):
    help = "Create the demo users (passwords printed once) and a dataset of real photos labelled by the classifier."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", default="demo")

    def handle(self, *args, dataset, **options):
        self._users()
        if Dataset.objects.filter(name=dataset).exists():
            self.stdout.write(f"Dataset {dataset!r} exists already; delete it in the admin to load it again.")
            return
        folder = Path(settings.MEDIA_ROOT) / "demo-images"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for source in sorted(DEMO_PHOTOS.glob("*.jpg")):
            with Image.open(source) as photo:
                for name, view in _variants(photo.convert("RGB")).items():
                    view.save(folder / f"{source.stem}-{name}.jpg", quality=90)
        self.stdout.write("Classifying the demo photos with the default model (takes a few seconds)...")
        call_command("classify", "--dataset", dataset, "--images", str(folder), stdout=self.stdout, stderr=self.stderr)

    def _users(self) -> None:
        User = get_user_model()
        for username, role in DEMO_USERS.items():
            if User.objects.filter(username=username).exists():
                self.stdout.write(f"User {username!r} exists already (password unchanged).")
                continue
            password = secrets.token_urlsafe(9)
            user = User.objects.create_user(username=username, password=password)
            roles.grant_role(user, role)
            self.stdout.write(f"Created {role} {username!r} with password {password}  (shown only once)")
